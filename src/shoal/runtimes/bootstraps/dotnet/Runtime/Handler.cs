// Loads the handler "Assembly::Namespace.Class::Method" from the task root and calls it, with the checks,
// error types and messages of AWS's .NET runtime (Amazon.Lambda.RuntimeSupport UserCodeLoader,
// UserCodeValidator, InvokeDelegateBuilder).
//
// Handler shapes: (), (TInput), (ILambdaContext), (TInput, ILambdaContext); TInput Stream gets the raw event;
// the result may be void, Task, a value, Task<T>, or a Stream (sent as is). Values go through the
// LambdaSerializer the method or the assembly names; where none is named (AWS would refuse to start),
// Shoal's DefaultLambdaJsonSerializer is used.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Threading.Tasks;
using Amazon.Lambda.Core;
using Amazon.Lambda.Core.Internal;
using Amazon.Lambda.Serialization.SystemTextJson;

namespace Shoal.Lambda
{
    internal sealed class Handler
    {
        private const BindingFlags DefaultFlags = BindingFlags.DeclaredOnly | BindingFlags.NonPublic | BindingFlags.Public
            | BindingFlags.Instance | BindingFlags.Static;
        private const string Format = "The valid format is 'ASSEMBLY::TYPE::METHOD'.";
        private const string ContextTypeName = "Amazon.Lambda.Core.ILambdaContext";

        private MethodInfo _method;
        private object _target;
        private object _serializer;
        private Type _inputType; // null: no input
        private bool _rawInput; // Stream
        private bool _takesContext;
        private bool _contextOnly;
        private Type _outputType; // null: nothing to send
        private bool _rawOutput; // a Stream subclass
        private PropertyInfo _taskResult; // Task<T>.Result when the method returns Task<T>
        private bool _returnsTask;
        private MethodInfo _deserialize, _serialize;

        private static LambdaValidationException Invalid(string format, params object[] args)
        {
            return new LambdaValidationException(string.Format(CultureInfo.InvariantCulture, format, args));
        }

        internal static Handler Load(string handlerString, string taskRoot)
        {
            var h = new Handler();
            if (string.IsNullOrEmpty(handlerString))
                throw Invalid("Empty lambda function handler. " + Format);
            var parts = handlerString.Split(new[] { "::" }, 3, StringSplitOptions.None);
            if (parts.Length != 3)
                throw Invalid("Invalid lambda function handler: '{0}'. " + Format, handlerString);
            string assemblyName = parts[0].Trim(), typeName = parts[1].Trim(), methodName = parts[2].Trim();
            if (assemblyName.Length == 0)
                throw Invalid("Invalid lambda function handler: '{0}', the assembly is missing. " + Format, handlerString);
            if (typeName.Length == 0)
                throw Invalid("Invalid lambda function handler: '{0}', the type is missing. " + Format, handlerString);
            if (methodName.Length == 0)
                throw Invalid("Invalid lambda function handler: '{0}', the method is missing. " + Format, handlerString);

            Assembly assembly;
            string path = Path.Combine(taskRoot, assemblyName + ".dll");
            if (!File.Exists(path))
                throw Invalid("Could not find the specified handler assembly with the file name '{0}, Culture=neutral, PublicKeyToken=null'. The assembly should be located in the root of your uploaded .zip file.", assemblyName);
            try
            {
                assembly = Assembly.LoadFrom(path);
            }
            catch (Exception e)
            {
                throw new LambdaValidationException(string.Format(CultureInfo.InvariantCulture, "Unable to load assembly '{0}'.", assemblyName), e);
            }

            var type = assembly.GetType(typeName);
            if (type == null)
                throw Invalid("Unable to load type '{0}' from assembly '{1}'.", typeName, assemblyName);

            var method = FindByName(type, methodName) ?? FindBySignature(type, methodName);
            if (method == null)
                throw Invalid("Unable to find method '{0}' in type '{1}' from assembly '{2}': Found no methods matching method name '{0}'.", methodName, typeName, assemblyName);
            h._method = method;
            ValidateMethod(method);
            ValidateType(type, method);
            if (method.IsStatic)
                RuntimeHelpers.RunClassConstructor(type.TypeHandle);
            else
                h._target = Activator.CreateInstance(type, true);
            h._serializer = SerializerOf(method, assembly) ?? new DefaultLambdaJsonSerializer();
            h.Shape(typeName);
            h.Warm();
            return h;
        }

        /// <summary>Work the first invocation would do, done during INIT instead (which runs without the CPU
        /// limit the invoke phase has): the JSON engine's own paths, and the JIT compilation — compilation only,
        /// no user code runs — of the handler and of the constructors and accessors of its input and output
        /// types, whose member maps are built too. Best effort.</summary>
        private void Warm()
        {
            try
            {
                var engine = _serializer.GetType() == typeof(DefaultLambdaJsonSerializer) ? JsonEngine.Default : null;
                var sample = JsonReader.Parse("{\"a\":[1,2.5,\"x\",true,null],\"b\":{\"c\":\"\\u00e9\\n\"}}");
                JsonEngine.Default.Serialize(JsonEngine.Natural(sample));
                if (LogSink.Instance != null)
                    LogSink.Instance.Prime();
                Prepare(_method);
                var seen = new Dictionary<Type, bool>();
                if (_inputType != null && !_rawInput)
                    WarmType(_inputType, engine, seen, 0);
                if (_outputType != null && !_rawOutput)
                    WarmType(_outputType, engine, seen, 0);
            }
            catch (Exception)
            {
            }
        }

        private static void Prepare(MethodBase method)
        {
            if (method == null || method.IsAbstract || method.ContainsGenericParameters)
                return;
            try
            {
                // Mono compiles a method for its function pointer (RuntimeHelpers.PrepareMethod does nothing there)
                method.MethodHandle.GetFunctionPointer();
            }
            catch (Exception)
            {
            }
        }

        private static void WarmType(Type type, JsonEngine engine, Dictionary<Type, bool> seen, int depth)
        {
            if (depth > 6 || type == null || seen.ContainsKey(type))
                return;
            seen[type] = true;
            if (type.IsArray)
            {
                WarmType(type.GetElementType(), engine, seen, depth + 1);
                return;
            }
            if (type.IsGenericType)
            {
                foreach (var argument in type.GetGenericArguments())
                    WarmType(argument, engine, seen, depth + 1);
            }
            if (type.IsPrimitive || type.IsEnum || type.IsInterface || type.ContainsGenericParameters
                || type.Assembly == typeof(object).Assembly || type.FullName == "System.Uri")
                return;
            if (engine != null)
                engine.TypeInfoOf(type);
            Prepare(type.GetConstructor(Type.EmptyTypes));
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                Prepare(property.GetGetMethod());
                Prepare(property.GetSetMethod());
                WarmType(property.PropertyType, engine, seen, depth + 1);
            }
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Instance))
                WarmType(field.FieldType, engine, seen, depth + 1);
        }

        private static MethodInfo FindByName(Type type, string name)
        {
            for (var t = type; t != null; t = t.BaseType)
            {
                try
                {
                    var m = t.GetMethod(name, DefaultFlags);
                    if (m != null)
                        return m;
                }
                catch (AmbiguousMatchException)
                {
                    var candidates = new List<string>();
                    foreach (var m in t.GetMethods(DefaultFlags))
                    {
                        if (m.Name == name || m.ToString() == name)
                            candidates.Add(m.ToString());
                    }
                    throw Invalid("The method '{0}' in type '{1}' appears to have a number of overloads. To call this method please specify a complete method signature. Possible candidates are:\n{2}.", name, t.FullName, string.Join("\n", candidates));
                }
            }
            return null;
        }

        private static MethodInfo FindBySignature(Type type, string signature)
        {
            for (var t = type; t != null; t = t.BaseType)
            {
                foreach (var m in t.GetMethods(DefaultFlags))
                {
                    if (string.Equals(m.ToString(), signature, StringComparison.Ordinal))
                        return m;
                }
            }
            return null;
        }

        private static void ValidateMethod(MethodInfo method)
        {
            if (method.IsAbstract)
                throw Invalid("The method '{0}' cannot be used as a Lambda Handler because it is an abstract method. Handler methods cannot be abstract. Please specify a non-abstract handler method.", method);
            if (method.IsGenericMethod)
                throw Invalid("The method '{0}' cannot be used as a Lambda Handler because it is a generic method. Handler methods cannot be generic. Please specify a non-generic handler method.", method);
            if (method.ReturnType == typeof(void) && method.GetCustomAttributes(typeof(AsyncStateMachineAttribute), false).Length > 0)
                throw Invalid("The method '{0}' cannot be used as a Lambda Handler because it is an 'async void' method. Handler methods cannot be 'async void'. Please specify a method that is not 'async void'.", method);
            foreach (var p in method.GetParameters())
            {
                if (p.GetCustomAttributes(typeof(ParamArrayAttribute), false).Length > 0)
                    throw Invalid("The method '{0}' cannot be used as a Lambda Handler because it is a 'params' method. Please specify a method that does not use 'params'.", method);
            }
            if ((method.CallingConvention & CallingConventions.VarArgs) != 0)
                throw Invalid("The method '{0}' cannot be used as a Lambda Handler because it is a 'vararg (variable arguments)' method. Please specify a method that is not 'vararg'.", method);
        }

        private static void ValidateType(Type type, MethodInfo method)
        {
            if (type.IsGenericType || type.ContainsGenericParameters)
                throw Invalid("The type '{0}' cannot be used as a Lambda Handler type because it is generic. Handler methods cannot be located in generic types. Please specify a handler method in a non-generic type.", type.FullName);
            if (!method.IsStatic && type.IsAbstract)
                throw Invalid("The instance method '{0}' cannot be used as a Lambda Handler because its type '{1}' is abstract. Please either use a static handler or specify a type that is not abstract.", method, type.FullName);
            if (!type.IsClass && !type.IsValueType)
                throw Invalid("The type '{0}' cannot be used as a handler type since it is not a class or a struct. Please specify a handler method on a class or struct.", type.FullName);
        }

        private static object SerializerOf(MethodInfo method, Assembly assembly)
        {
            var attribute = SerializerAttribute(method.GetCustomAttributes(false)) ?? SerializerAttribute(assembly.GetCustomAttributes(false));
            if (attribute == null)
                return null;
            var attributeType = attribute.GetType();
            var property = attributeType.GetProperty("SerializerType");
            if (property == null)
                throw Invalid("The '{0}' class is invalid: no 'SerializerType' property detected.", attributeType.FullName);
            if (!typeof(Type).IsAssignableFrom(property.PropertyType))
                throw Invalid("The '{0}' class is invalid: 'SerializerType' property cannot be converted to type '{1}'.", attributeType.FullName, typeof(Type).FullName);
            var serializerType = property.GetValue(attribute, null) as Type;
            if (serializerType == null)
                throw Invalid("The 'SerializerType' property on attribute class '{0}' is not set.", attributeType.FullName);
            var constructor = serializerType.GetConstructor(Type.EmptyTypes);
            if (constructor == null)
                throw Invalid("The indicated serializer '{0}' does not define a public zero-parameter constructor.", serializerType.FullName);
            if (serializerType.GetInterface("Amazon.Lambda.Core.ILambdaSerializer") == null)
                throw Invalid("The '{0}' class is invalid: it does not implement the 'ILambdaSerializer' interface.", serializerType.FullName);
            return constructor.Invoke(null);
        }

        private static object SerializerAttribute(object[] attributes)
        {
            foreach (var a in attributes)
            {
                if (a.GetType().Name == "LambdaSerializerAttribute")
                    return a;
            }
            return null;
        }

        private static Type TaskResultType(Type type)
        {
            for (var t = type; t != null; t = t.BaseType)
            {
                if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Task<>))
                    return t;
            }
            return null;
        }

        private void Shape(string typeName)
        {
            var parameters = _method.GetParameters();
            if (parameters.Length > 2)
                throw Invalid("Method '{0}' of type '{1}' is not supported: the method has more than 2 parameters.", _method.Name, typeName);
            if (parameters.Length == 2)
            {
                if (parameters[1].ParameterType.FullName != ContextTypeName)
                    throw Invalid("Method '{0}' of type '{1}' is not supported: the method has 2 parameters, but the second parameter is not of type '{2}'.", _method.Name, typeName, ContextTypeName);
                _inputType = parameters[0].ParameterType;
                _takesContext = true;
            }
            else if (parameters.Length == 1)
            {
                if (parameters[0].ParameterType.FullName == ContextTypeName)
                    _contextOnly = true;
                else
                    _inputType = parameters[0].ParameterType;
            }
            var serializerInterface = _serializer.GetType().GetInterface("Amazon.Lambda.Core.ILambdaSerializer");
            if (_inputType != null)
            {
                if (_inputType == typeof(Stream))
                    _rawInput = true;
                else
                    _deserialize = serializerInterface.GetMethod("Deserialize").MakeGenericMethod(_inputType);
            }
            var returns = _method.ReturnType;
            var taskT = TaskResultType(returns);
            if (taskT != null)
            {
                _returnsTask = true;
                _taskResult = taskT.GetProperty("Result");
                _outputType = taskT.GetGenericArguments()[0];
            }
            else if (typeof(Task).IsAssignableFrom(returns))
            {
                _returnsTask = true;
            }
            else if (returns != typeof(void))
            {
                _outputType = returns;
            }
            if (_outputType != null)
            {
                if (typeof(Stream).IsAssignableFrom(_outputType))
                    _rawOutput = true;
                else
                    _serialize = serializerInterface.GetMethod("Serialize").MakeGenericMethod(_outputType);
            }
        }

        private static object Call(MethodInfo method, object target, object[] args)
        {
            try
            {
                return method.Invoke(target, args);
            }
            catch (TargetInvocationException e)
            {
                if (e.InnerException == null)
                    throw;
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw;
            }
        }

        /// <summary>Runs the handler on one event; the response body (empty when there is nothing to send).</summary>
        internal MemoryStream Invoke(byte[] payload, ILambdaContext context)
        {
            object[] args;
            if (_contextOnly)
            {
                args = new object[] { context };
            }
            else if (_inputType == null)
            {
                args = new object[0];
            }
            else
            {
                object input = new MemoryStream(payload, 0, payload.Length, false, true);
                if (!_rawInput)
                    input = Call(_deserialize, _serializer, new[] { input });
                args = _takesContext ? new[] { input, context } : new[] { input };
            }
            object result = Call(_method, _target, args);
            if (_returnsTask)
            {
                var task = (Task)result;
                if (task == null)
                    throw new NullReferenceException("Object reference not set to an instance of an object.");
                task.GetAwaiter().GetResult();
                result = _taskResult == null ? null : _taskResult.GetValue(task, null);
            }
            var output = new MemoryStream();
            if (_outputType == null)
                return output;
            if (_rawOutput)
            {
                var stream = (Stream)result;
                if (stream != null)
                {
                    using (stream)
                        stream.CopyTo(output);
                }
                return output;
            }
            Call(_serialize, _serializer, new[] { result, output });
            return output;
        }
    }
}
