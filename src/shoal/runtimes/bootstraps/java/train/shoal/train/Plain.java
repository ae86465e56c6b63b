package shoal.train;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.HashMap;
import java.util.Map;

/** Training handler loaded from the task root's class directory (not a jar). */
public class Plain {
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        Map<String, Object> out = new HashMap<>();
        out.put("greeting", "Hello " + event.get("name") + " #" + event.size());
        out.put("requestId", context.getAwsRequestId());
        return out;
    }
}
