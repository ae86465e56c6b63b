// Shoal's stand-in for the Amazon.Lambda.Serialization.SystemTextJson package: the serializer classes AWS's
// .NET templates name in [assembly: LambdaSerializer(...)], with the same names, backed by Shoal's JSON
// engine (Mono has no System.Text.Json). Public properties (and, leniently, public fields) are read
// case-insensitively; null members are left out of the output, as AWS's serializers do.
using System;
using System.IO;
using System.Reflection;
using Amazon.Lambda.Core;
using Amazon.Lambda.Core.Internal;

[assembly: AssemblyTitle("Amazon.Lambda.Serialization.SystemTextJson")]
[assembly: AssemblyVersion("2.4.0.0")]

namespace Amazon.Lambda.Serialization.SystemTextJson
{
    /// <summary>The default serializer of .NET Lambda functions: member names as declared.</summary>
    public class DefaultLambdaJsonSerializer : ILambdaSerializer
    {
        private readonly JsonEngine _engine;

        /// <summary>Member names as declared.</summary>
        public DefaultLambdaJsonSerializer() : this(false)
        {
        }

        internal DefaultLambdaJsonSerializer(bool camelCase)
        {
            _engine = camelCase ? new JsonEngine(true, true) : JsonEngine.Default;
        }

        /// <summary>Reads the event.</summary>
        public T Deserialize<T>(Stream requestStream)
        {
            try
            {
                return (T)_engine.Deserialize(requestStream, typeof(T));
            }
            catch (Exception e)
            {
                if (typeof(T) == typeof(string))
                    throw new JsonSerializerException("Error converting the Lambda event JSON payload to a string. JSON strings must be quoted, for example \"Hello World\" in order to be converted to a string: " + e.Message, e);
                throw new JsonSerializerException("Error converting the Lambda event JSON payload to type " + typeof(T).FullName + ": " + e.Message, e);
            }
        }

        /// <summary>Writes the response.</summary>
        public void Serialize<T>(T response, Stream responseStream)
        {
            try
            {
                _engine.Serialize(response, responseStream);
            }
            catch (Exception e)
            {
                throw new JsonSerializerException("Error converting the response object of type " + typeof(T).FullName + " from the Lambda function to JSON: " + e.Message, e);
            }
        }
    }

    /// <summary>Like <see cref="DefaultLambdaJsonSerializer"/>, with camelCase member names.</summary>
    public class CamelCaseLambdaJsonSerializer : DefaultLambdaJsonSerializer
    {
        /// <summary>camelCase member names.</summary>
        public CamelCaseLambdaJsonSerializer() : base(true)
        {
        }
    }

    /// <summary>The older serializer class of the package (kept by AWS for compatibility).</summary>
    public class LambdaJsonSerializer : DefaultLambdaJsonSerializer
    {
    }

    /// <summary>Thrown when an event or a response cannot be converted.</summary>
    public class JsonSerializerException : Exception
    {
        /// <summary>With a message.</summary>
        public JsonSerializerException(string message) : base(message)
        {
        }

        /// <summary>With a message and the cause.</summary>
        public JsonSerializerException(string message, Exception exception) : base(message, exception)
        {
        }
    }
}
