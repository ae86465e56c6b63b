package shoal.runtime;

import java.lang.reflect.Method;

/**
 * The request id in log4j's context map (``%X{AWSRequestId}`` in a layout), for functions using
 * aws-lambda-java-log4j2 (it calls {@code LambdaRuntimeInternal.setUseLog4jAppender(true)}), as AWS's runtime
 * does it: log4j 2's {@code ThreadContext}, else log4j 1's {@code MDC}.
 */
final class Log4j {
    private Log4j() {
    }

    private static Method put;
    private static boolean looked;

    static void putRequestId(ClassLoader loader, String requestId) {
        if (!looked) {
            looked = true;
            put = find(loader, "org.apache.logging.log4j.ThreadContext", String.class);
            if (put == null) {
                put = find(loader, "org.apache.log4j.MDC", Object.class);
            }
            if (put == null) {
                System.err.println("Customer using log4j appender but unable to load either org.apache.log4j.MDC "
                        + "or org.apache.logging.log4j.ThreadContext. Customer cannot see RequestId in log4j log "
                        + "lines.");
            }
        }
        if (put != null) {
            try {
                put.invoke(null, "AWSRequestId", requestId);
            } catch (ReflectiveOperationException | RuntimeException e) {
                // logging must never fail an invocation
            }
        }
    }

    private static Method find(ClassLoader loader, String className, Class<?> valueType) {
        try {
            return Class.forName(className, true, loader).getMethod("put", String.class, valueType);
        } catch (ReflectiveOperationException | LinkageError e) {
            return null;
        }
    }
}
