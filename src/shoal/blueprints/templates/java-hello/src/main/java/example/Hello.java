package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Hello world in Java. Invoke it with {"name": "Shoal"}.
 *
 * <p>The event arrives as a Map (the runtime turns the JSON into Maps, Lists, Strings, numbers and booleans)
 * and the returned Map goes back as JSON. Only aws-lambda-java-core is needed to compile it.
 */
public class Hello implements RequestHandler<Map<String, Object>, Map<String, Object>> {

    @Override
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        Object given = event == null ? null : event.get("name");
        String name = given == null || given.toString().isEmpty() ? "world" : given.toString();
        LambdaLogger logger = context.getLogger();
        logger.log("{\"level\": \"INFO\", \"message\": \"greeting\", \"name\": \"" + name + "\"}");

        Map<String, Object> result = new LinkedHashMap<>();
        result.put("message", "Hello, " + name + "!");
        result.put("requestId", context.getAwsRequestId());
        result.put("runtime", System.getenv().getOrDefault("AWS_EXECUTION_ENV", ""));
        return result;
    }
}
