package shoal.runtime;

import java.util.Map;

/** What the runtime reads from its environment (spec §4.1). */
final class Config {
    String runtimeApi;
    String handler;
    String taskRoot;
    String optRoot = "/opt/java";
    String functionName;
    String functionVersion;
    String logGroup;
    String logStream;
    int memoryMb = 128;
    String logFormat;
    String logLevel;
    boolean training;

    static Config fromEnvironment(Map<String, String> env) {
        Config c = new Config();
        c.runtimeApi = env.getOrDefault("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001");
        c.handler = env.getOrDefault("_HANDLER", "");
        String root = env.get("LAMBDA_TASK_ROOT");
        c.taskRoot = root == null || root.isEmpty() ? System.getProperty("user.dir") : root;
        c.functionName = env.get("AWS_LAMBDA_FUNCTION_NAME");
        c.functionVersion = env.get("AWS_LAMBDA_FUNCTION_VERSION");
        c.logGroup = env.get("AWS_LAMBDA_LOG_GROUP_NAME");
        c.logStream = env.get("AWS_LAMBDA_LOG_STREAM_NAME");
        try {
            c.memoryMb = Integer.parseInt(env.getOrDefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128").trim());
        } catch (NumberFormatException e) {
            c.memoryMb = 128;
        }
        c.logFormat = env.get("AWS_LAMBDA_LOG_FORMAT");
        c.logLevel = env.get("AWS_LAMBDA_LOG_LEVEL");
        return c;
    }
}
