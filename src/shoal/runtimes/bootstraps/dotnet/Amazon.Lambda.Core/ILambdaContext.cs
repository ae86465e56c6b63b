using System;

namespace Amazon.Lambda.Core
{
    /// <summary>What a function learns about its invocation and its execution environment.</summary>
    public interface ILambdaContext
    {
        /// <summary>The request id of this invocation (the one the caller sees).</summary>
        string AwsRequestId { get; }

        /// <summary>The AWS Mobile SDK client context, or null.</summary>
        IClientContext ClientContext { get; }

        /// <summary>The function's name.</summary>
        string FunctionName { get; }

        /// <summary>The version being executed ($LATEST or a number, never an alias).</summary>
        string FunctionVersion { get; }

        /// <summary>The Amazon Cognito identity of the caller, or null.</summary>
        ICognitoIdentity Identity { get; }

        /// <summary>The ARN the function was invoked with (qualified when the caller qualified it).</summary>
        string InvokedFunctionArn { get; }

        /// <summary>The logger of this invocation.</summary>
        ILambdaLogger Logger { get; }

        /// <summary>The CloudWatch Logs group of the function.</summary>
        string LogGroupName { get; }

        /// <summary>The CloudWatch Logs stream of this execution environment.</summary>
        string LogStreamName { get; }

        /// <summary>The configured memory, in MB.</summary>
        int MemoryLimitInMB { get; }

        /// <summary>Time left before the invocation times out.</summary>
        TimeSpan RemainingTime { get; }
    }
}
