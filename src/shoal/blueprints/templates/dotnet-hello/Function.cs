using System;
using System.Collections.Generic;
using Amazon.Lambda.Core;

[assembly: LambdaSerializer(typeof(Amazon.Lambda.Serialization.SystemTextJson.DefaultLambdaJsonSerializer))]

namespace HelloWorld
{
    /// <summary>Hello world in C#. Invoke it with {"name": "Shoal"}.</summary>
    public class Function
    {
        public Dictionary<string, string> FunctionHandler(Dictionary<string, object> input, ILambdaContext context)
        {
            object given;
            string name = input != null && input.TryGetValue("name", out given) && given is string && (string)given != ""
                ? (string)given
                : "world";
            context.Logger.LogLine("greeting " + name);
            return new Dictionary<string, string>
            {
                { "message", "Hello, " + name + "!" },
                { "requestId", context.AwsRequestId },
                { "runtime", Environment.GetEnvironmentVariable("AWS_EXECUTION_ENV") ?? "" },
            };
        }
    }
}
