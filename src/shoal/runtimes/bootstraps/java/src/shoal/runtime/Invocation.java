package shoal.runtime;

/** One event from {@code /next}. */
final class Invocation {
    final String requestId;
    final long deadlineMs;
    final String invokedArn;
    final String traceId;
    final String clientContext;
    final String cognitoIdentity;
    final String tenantId;
    final byte[] body;

    Invocation(RuntimeClient.Response r) {
        this.requestId = r.header("lambda-runtime-aws-request-id");
        long deadline;
        try {
            deadline = Long.parseLong(r.header("lambda-runtime-deadline-ms"));
        } catch (RuntimeException e) {
            deadline = 0;
        }
        this.deadlineMs = deadline;
        this.invokedArn = r.header("lambda-runtime-invoked-function-arn");
        this.traceId = r.header("lambda-runtime-trace-id");
        this.clientContext = r.header("lambda-runtime-client-context");
        this.cognitoIdentity = r.header("lambda-runtime-cognito-identity");
        String tenant = r.header("lambda-runtime-aws-tenant-id");
        this.tenantId = tenant == null || tenant.isEmpty() ? null : tenant;
        this.body = r.body;
    }
}
