package com.amazonaws.services.lambda.runtime;

/**
 * Used by logging integrations (aws-lambda-java-log4j2) to tell the runtime about themselves.
 */
public final class LambdaRuntimeInternal {

    private LambdaRuntimeInternal() {
    }

    private static boolean useLog4jAppender;

    public static void setUseLog4jAppender(boolean useLog4j) {
        useLog4jAppender = useLog4j;
    }

    public static boolean getUseLog4jAppender() {
        return useLog4jAppender;
    }
}
