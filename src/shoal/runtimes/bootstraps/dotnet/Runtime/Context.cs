// ILambdaContext and its parts, from the /next headers and the environment (as AWS's LambdaContext).
using System;
using System.Collections.Generic;
using System.Globalization;
using Amazon.Lambda.Core;
using Amazon.Lambda.Core.Internal;

namespace Shoal.Lambda
{
    internal sealed class FunctionEnvironment
    {
        internal readonly string FunctionName = Environment.GetEnvironmentVariable("AWS_LAMBDA_FUNCTION_NAME");
        internal readonly string FunctionVersion = Environment.GetEnvironmentVariable("AWS_LAMBDA_FUNCTION_VERSION");
        internal readonly string LogGroupName = Environment.GetEnvironmentVariable("AWS_LAMBDA_LOG_GROUP_NAME");
        internal readonly string LogStreamName = Environment.GetEnvironmentVariable("AWS_LAMBDA_LOG_STREAM_NAME");
        internal readonly int MemoryLimitInMB;

        internal FunctionEnvironment()
        {
            int.TryParse(Environment.GetEnvironmentVariable("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), NumberStyles.Integer, CultureInfo.InvariantCulture, out MemoryLimitInMB);
        }
    }

    internal sealed class LambdaContext : ILambdaContext
    {
        private static readonly DateTime Epoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        private readonly FunctionEnvironment _env;
        private readonly long _deadlineMs;
        private readonly string _clientContextJson;
        private readonly string _identityJson;
        private IClientContext _clientContext;
        private ICognitoIdentity _identity;
        private bool _clientParsed, _identityParsed;

        internal LambdaContext(FunctionEnvironment env, ApiResponse next)
        {
            _env = env;
            AwsRequestId = next.Header("Lambda-Runtime-Aws-Request-Id");
            InvokedFunctionArn = next.Header("Lambda-Runtime-Invoked-Function-Arn");
            TraceId = next.Header("Lambda-Runtime-Trace-Id");
            long.TryParse(next.Header("Lambda-Runtime-Deadline-Ms"), NumberStyles.Integer, CultureInfo.InvariantCulture, out _deadlineMs);
            _clientContextJson = next.Header("Lambda-Runtime-Client-Context");
            _identityJson = next.Header("Lambda-Runtime-Cognito-Identity");
        }

        public string AwsRequestId { get; private set; }
        public string InvokedFunctionArn { get; private set; }
        public string TraceId { get; private set; }
        public string FunctionName { get { return _env.FunctionName; } }
        public string FunctionVersion { get { return _env.FunctionVersion; } }
        public string LogGroupName { get { return _env.LogGroupName; } }
        public string LogStreamName { get { return _env.LogStreamName; } }
        public int MemoryLimitInMB { get { return _env.MemoryLimitInMB; } }
        public ILambdaLogger Logger { get { return ContextLogger.Instance; } }

        public TimeSpan RemainingTime
        {
            get { return TimeSpan.FromMilliseconds(_deadlineMs - (DateTime.UtcNow - Epoch).TotalMilliseconds); }
        }

        public IClientContext ClientContext
        {
            get
            {
                if (!_clientParsed)
                {
                    _clientContext = ClientContextData.Parse(_clientContextJson);
                    _clientParsed = true;
                }
                return _clientContext;
            }
        }

        public ICognitoIdentity Identity
        {
            get
            {
                if (!_identityParsed)
                {
                    _identity = CognitoIdentityData.Parse(_identityJson);
                    _identityParsed = true;
                }
                return _identity;
            }
        }

        internal static Dictionary<string, object> ParseObject(string json)
        {
            if (string.IsNullOrEmpty(json))
                return null;
            try
            {
                return JsonReader.Parse(json) as Dictionary<string, object>;
            }
            catch (JsonException)
            {
                return null;
            }
        }

        internal static string Text(Dictionary<string, object> obj, string key)
        {
            object value;
            if (obj == null || !obj.TryGetValue(key, out value) || value == null)
                return null;
            return value as string ?? value.ToString();
        }

        internal static IDictionary<string, string> Strings(Dictionary<string, object> obj, string key)
        {
            object value;
            if (obj == null || !obj.TryGetValue(key, out value))
                return null;
            var dict = value as Dictionary<string, object>;
            if (dict == null)
                return null;
            var result = new Dictionary<string, string>();
            foreach (var pair in dict)
                result[pair.Key] = pair.Value == null ? null : pair.Value as string ?? pair.Value.ToString();
            return result;
        }
    }

    internal sealed class ClientContextData : IClientContext
    {
        public IDictionary<string, string> Environment { get; private set; }
        public IClientApplication Client { get; private set; }
        public IDictionary<string, string> Custom { get; private set; }

        internal static ClientContextData Parse(string json)
        {
            var obj = LambdaContext.ParseObject(json);
            if (obj == null)
                return null;
            var result = new ClientContextData
            {
                Environment = LambdaContext.Strings(obj, "env"),
                Custom = LambdaContext.Strings(obj, "custom"),
            };
            object client;
            if (obj.TryGetValue("client", out client) && client is Dictionary<string, object>)
            {
                var c = (Dictionary<string, object>)client;
                result.Client = new ClientApplicationData
                {
                    AppPackageName = LambdaContext.Text(c, "app_package_name"),
                    AppTitle = LambdaContext.Text(c, "app_title"),
                    AppVersionCode = LambdaContext.Text(c, "app_version_code"),
                    AppVersionName = LambdaContext.Text(c, "app_version_name"),
                    InstallationId = LambdaContext.Text(c, "installation_id"),
                };
            }
            return result;
        }
    }

    internal sealed class ClientApplicationData : IClientApplication
    {
        public string AppPackageName { get; set; }
        public string AppTitle { get; set; }
        public string AppVersionCode { get; set; }
        public string AppVersionName { get; set; }
        public string InstallationId { get; set; }
    }

    internal sealed class CognitoIdentityData : ICognitoIdentity
    {
        public string IdentityId { get; private set; }
        public string IdentityPoolId { get; private set; }

        internal static CognitoIdentityData Parse(string json)
        {
            var obj = LambdaContext.ParseObject(json);
            if (obj == null)
                return null;
            return new CognitoIdentityData
            {
                IdentityId = LambdaContext.Text(obj, "cognitoIdentityId"),
                IdentityPoolId = LambdaContext.Text(obj, "cognitoIdentityPoolId"),
            };
        }
    }
}
