using System;
using System.IO;

namespace Amazon.Lambda.Core
{
    /// <summary>Turns the event into the handler's input type and its result into the response.</summary>
    public interface ILambdaSerializer
    {
        /// <summary>Reads an object of type T from the request stream.</summary>
        T Deserialize<T>(Stream requestStream);

        /// <summary>Writes the response object to the response stream.</summary>
        void Serialize<T>(T response, Stream responseStream);
    }

    /// <summary>Names the <see cref="ILambdaSerializer"/> the runtime uses for a method or a whole assembly.</summary>
    [AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Method, AllowMultiple = false)]
    public sealed class LambdaSerializerAttribute : Attribute
    {
        /// <summary>The serializer type: a class with a public parameterless constructor implementing ILambdaSerializer.</summary>
        public Type SerializerType { get; set; }

        /// <summary>Names the serializer type.</summary>
        public LambdaSerializerAttribute(Type serializerType)
        {
            SerializerType = serializerType;
        }
    }
}
