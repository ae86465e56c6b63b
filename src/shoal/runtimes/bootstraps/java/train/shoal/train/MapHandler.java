package shoal.train;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;
import java.util.TreeMap;

/** Training handler: RequestHandler over maps. */
public class MapHandler implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    public Map<String, Object> handleRequest(Map<String, Object> input, Context context) {
        LambdaRuntime.getLogger().log("map keys " + input.keySet());
        Map<String, Object> out = new TreeMap<>(input);
        out.put("requestId", context.getAwsRequestId());
        out.put("nothing", null);
        return out;
    }
}
