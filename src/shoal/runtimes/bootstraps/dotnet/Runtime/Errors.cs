// Error reports in the shapes of AWS's .NET runtime (Amazon.Lambda.RuntimeSupport):
//
// - the body posted to /invocation/{id}/error and /init/error is the runtime's own indented JSON:
//   {"errorType": <exception class name without namespace>, "errorMessage": …, "stackTrace": ["at …", …],
//    "cause": {…inner exception…}, "causes": [{…}, …] (AggregateException)};
// - stack frames are written as .NET writes them ("at Ns.Type.Method(Int32 x) in /src/F.cs:line 12"), not
//   as Mono does; async state machines are shown as the async method, await boundaries as
//   "--- End of stack trace from previous location ---", and the runtime's own frames are left out;
// - the log gets Exception.ToString() in .NET's layout.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using Amazon.Lambda.Core.Internal;

namespace Shoal.Lambda
{
    /// <summary>A handler that cannot be loaded (AWS: Amazon.Lambda.RuntimeSupport.ExceptionHandling.LambdaValidationException).</summary>
    internal sealed class LambdaValidationException : Exception
    {
        internal LambdaValidationException(string message) : base(message)
        {
        }

        internal LambdaValidationException(string message, Exception inner) : base(message, inner)
        {
        }

        internal static string FullTypeName = "Amazon.Lambda.RuntimeSupport.ExceptionHandling.LambdaValidationException";
    }

    internal static class Errors
    {
        private const string EndOfPrevious = "--- End of stack trace from previous location ---";
        private static readonly Assembly Runtime = typeof(Errors).Assembly;

        /// <summary>The stack lines of an exception, .NET style, without "   " indentation.</summary>
        internal static List<string> StackLines(Exception e)
        {
            var lines = new List<string>();
            StackFrame[] frames;
            try
            {
                frames = new StackTrace(e, true).GetFrames();
            }
            catch (Exception)
            {
                frames = null;
            }
            if (frames == null)
                return lines;
            bool pendingBoundary = false;
            foreach (var frame in frames)
            {
                MethodBase method;
                try
                {
                    method = frame.GetMethod();
                }
                catch (Exception)
                {
                    continue;
                }
                if (method == null)
                    continue;
                var type = method.DeclaringType;
                if (type != null && type.Assembly == Runtime)
                    continue;
                string ns = type == null ? null : type.Namespace;
                if (ns == "System.Runtime.ExceptionServices" && type.Name == "ExceptionDispatchInfo")
                {
                    if (lines.Count > 0)
                        pendingBoundary = true;
                    continue;
                }
                if (ns == "System.Runtime.CompilerServices" && (type.Name.StartsWith("TaskAwaiter", StringComparison.Ordinal)
                    || type.Name.StartsWith("ConfiguredTaskAwaitable", StringComparison.Ordinal)
                    || type.Name.StartsWith("AsyncTaskMethodBuilder", StringComparison.Ordinal)
                    || type.Name.StartsWith("AsyncMethodBuilderCore", StringComparison.Ordinal)))
                    continue;
                if (ns == "System.Reflection" || (type != null && type.FullName == "System.RuntimeMethodHandle"))
                    continue; // MethodInfo.Invoke between the runtime and the handler
                if (pendingBoundary)
                {
                    lines.Add(EndOfPrevious);
                    pendingBoundary = false;
                }
                var sb = new StringBuilder("at ");
                AppendMethod(sb, method);
                string file = null;
                try
                {
                    file = frame.GetFileName();
                }
                catch (Exception)
                {
                }
                int line = frame.GetFileLineNumber();
                if (!string.IsNullOrEmpty(file) && line > 0)
                    sb.Append(" in ").Append(file).Append(":line ").Append(line);
                lines.Add(sb.ToString());
            }
            return lines;
        }

        private static void AppendTypeName(StringBuilder sb, Type type)
        {
            if (type.DeclaringType != null && !type.IsGenericParameter)
            {
                AppendTypeName(sb, type.DeclaringType);
                sb.Append('.');
            }
            else if (!string.IsNullOrEmpty(type.Namespace))
            {
                sb.Append(type.Namespace).Append('.');
            }
            sb.Append(type.Name);
        }

        private static void AppendMethod(StringBuilder sb, MethodBase method)
        {
            var type = method.DeclaringType;
            string name = method.Name;
            // an async method's state machine (<Name>d__N from Roslyn, <Name>c__asyncN from mcs): show the method
            if (type != null && name == "MoveNext" && type.DeclaringType != null && type.Name.StartsWith("<", StringComparison.Ordinal))
            {
                int close = type.Name.IndexOf('>');
                string original = close > 1 ? type.Name.Substring(1, close - 1) : null;
                MethodBase source = original == null ? null : FindStateMachineOwner(type, original);
                if (source != null)
                {
                    method = source;
                    type = source.DeclaringType;
                    name = source.Name;
                }
            }
            if (type != null)
            {
                AppendTypeName(sb, type);
                sb.Append('.');
            }
            sb.Append(name);
            if (method.IsGenericMethod)
            {
                sb.Append('[');
                var args = method.GetGenericArguments();
                for (int i = 0; i < args.Length; i++)
                {
                    if (i > 0)
                        sb.Append(',');
                    sb.Append(args[i].Name);
                }
                sb.Append(']');
            }
            sb.Append('(');
            ParameterInfo[] parameters;
            try
            {
                parameters = method.GetParameters();
            }
            catch (Exception)
            {
                parameters = new ParameterInfo[0];
            }
            for (int i = 0; i < parameters.Length; i++)
            {
                if (i > 0)
                    sb.Append(", ");
                sb.Append(parameters[i].ParameterType.Name);
                if (!string.IsNullOrEmpty(parameters[i].Name))
                    sb.Append(' ').Append(parameters[i].Name);
            }
            sb.Append(')');
        }

        private static MethodBase FindStateMachineOwner(Type stateMachine, string name)
        {
            var owner = stateMachine.DeclaringType;
            foreach (var m in owner.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            {
                if (m.Name != name)
                    continue;
                foreach (var a in m.GetCustomAttributes(false))
                {
                    var sm = a as StateMachineAttribute;
                    if (sm != null && sm.StateMachineType == stateMachine)
                        return m;
                }
            }
            foreach (var m in owner.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            {
                if (m.Name == name)
                    return m;
            }
            return null;
        }

        /// <summary>Exception.ToString() as .NET lays it out.</summary>
        internal static string ToText(Exception e)
        {
            var sb = new StringBuilder();
            AppendText(sb, e);
            return sb.ToString();
        }

        private static string TypeNameOf(Exception e)
        {
            return e is LambdaValidationException ? LambdaValidationException.FullTypeName : e.GetType().FullName;
        }

        private static void AppendText(StringBuilder sb, Exception e)
        {
            sb.Append(TypeNameOf(e));
            if (!string.IsNullOrEmpty(e.Message))
                sb.Append(": ").Append(e.Message);
            if (e.InnerException != null)
            {
                sb.Append("\n ---> ");
                AppendText(sb, e.InnerException);
                sb.Append("\n   --- End of inner exception stack trace ---");
            }
            foreach (var line in StackLines(e))
                sb.Append("\n   ").Append(line);
        }

        /// <summary>The body AWS's .NET runtime posts for an exception (its indentation included).</summary>
        internal static string ToJson(Exception e)
        {
            var sb = new StringBuilder(512);
            AppendJson(sb, e, 0, false);
            return sb.ToString();
        }

        private static string Pad(int depth)
        {
            return new string(' ', depth * 2);
        }

        private static string Quote(string s)
        {
            var sb = new StringBuilder(s.Length + 2);
            JsonEngine.WriteString(sb, s);
            return sb.ToString();
        }

        private static void AppendJson(StringBuilder sb, Exception e, int depth, bool comma)
        {
            var inner = depth + 1;
            var elements = new List<string>();
            elements.Add(Pad(inner) + "\"errorType\": " + Quote(e.GetType().Name));
            if (e.Message != null)
                elements.Add(Pad(inner) + "\"errorMessage\": " + Quote(e.Message));
            var stack = StackLines(e);
            if (stack.Count > 0)
            {
                var st = new StringBuilder();
                st.Append(Pad(inner)).Append("\"stackTrace\": [\n");
                for (int i = 0; i < stack.Count; i++)
                {
                    if (i > 0)
                        st.Append(",\n");
                    st.Append(Pad(inner + 1)).Append(Quote(stack[i]));
                }
                st.Append('\n').Append(Pad(inner)).Append(']');
                elements.Add(st.ToString());
            }
            sb.Append(Pad(depth)).Append("{\n");
            sb.Append(string.Join(",\n", elements));
            var aggregate = e as AggregateException;
            bool hasList = aggregate != null && aggregate.InnerExceptions.Count > 0;
            if (e.InnerException != null)
            {
                sb.Append(",\n").Append(Pad(inner)).Append("\"cause\": ");
                AppendJson(sb, e.InnerException, inner, hasList);
            }
            if (hasList)
            {
                sb.Append(Pad(inner)).Append("\"causes\": [");
                for (int i = 0; i < aggregate.InnerExceptions.Count; i++)
                    AppendJson(sb, aggregate.InnerExceptions[i], inner + 1, i < aggregate.InnerExceptions.Count - 1);
                sb.Append(Pad(inner)).Append("]\n");
            }
            if (e.InnerException == null && !hasList)
                sb.Append('\n');
            sb.Append(Pad(depth)).Append('}').Append(comma ? "," : "").Append('\n');
        }
    }
}
