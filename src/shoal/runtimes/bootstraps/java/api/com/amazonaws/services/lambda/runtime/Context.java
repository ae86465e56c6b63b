package com.amazonaws.services.lambda.runtime;

/**
 * What a handler can learn about its invocation and its execution environment (aws-lambda-java-core API).
 */
public interface Context {

    /** The request id of this invocation (the {@code x-amzn-RequestId} the caller saw). */
    String getAwsRequestId();

    /** The CloudWatch log group of the function, or null. */
    String getLogGroupName();

    /** The log stream of this execution environment, or null. */
    String getLogStreamName();

    /** The function's name. */
    String getFunctionName();

    /** The executed version ({@code $LATEST} or a number). */
    String getFunctionVersion();

    /** The ARN the caller invoked, with its qualifier when it gave one. */
    String getInvokedFunctionArn();

    /** The Amazon Cognito identity of the caller, or null. */
    CognitoIdentity getIdentity();

    /** The mobile client context the caller passed, or null. */
    ClientContext getClientContext();

    /** Milliseconds left before the invocation times out (never negative). */
    int getRemainingTimeInMillis();

    /** The function's configured memory, in MB. */
    int getMemoryLimitInMB();

    /** The logger of this invocation. */
    LambdaLogger getLogger();

    /** The X-Ray trace header of this invocation, or null. */
    default String getXrayTraceId() {
        return null;
    }

    /** The tenant id of this invocation (tenant-isolated functions), or null. */
    default String getTenantId() {
        return null;
    }
}
