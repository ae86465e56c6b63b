package shoal.train;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.math.BigDecimal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Training handler (class-data sharing archive): a POJO in, a POJO out, logging and context use. */
public class PojoHandler {
    private static int calls;

    public static class Item {
        private int id;

        public int getId() {
            return id;
        }

        public void setId(int id) {
            this.id = id;
        }
    }

    public static class Nested {
        public boolean flag;
        public List<Item> items;
    }

    public static class Input {
        private String name;
        private Integer count;
        private double ratio;
        private List<String> tags;
        private Nested nested;
        private Instant when;

        public String getName() {
            return name;
        }

        public void setName(String name) {
            this.name = name;
        }

        public Integer getCount() {
            return count;
        }

        public void setCount(Integer count) {
            this.count = count;
        }

        public double getRatio() {
            return ratio;
        }

        public void setRatio(double ratio) {
            this.ratio = ratio;
        }

        public List<String> getTags() {
            return tags;
        }

        public void setTags(List<String> tags) {
            this.tags = tags;
        }

        public Nested getNested() {
            return nested;
        }

        public void setNested(Nested nested) {
            this.nested = nested;
        }

        public Instant getWhen() {
            return when;
        }

        public void setWhen(Instant when) {
            this.when = when;
        }
    }

    public static class Output {
        public String greeting;
        public int calls;
        public BigDecimal total;
        public Map<String, Object> context = new LinkedHashMap<>();
        public List<Integer> ids = new ArrayList<>();
        private boolean ok = true;

        public boolean isOk() {
            return ok;
        }
    }

    public Output handle(Input in, Context context) {
        calls++;
        LambdaLogger logger = context.getLogger();
        logger.log("handling " + in.getName());
        logger.log("level line", LogLevel.INFO);
        System.out.println("stdout line\nsecond");
        System.err.println("stderr line");
        if ("boom".equals(in.getName())) {
            throw new IllegalStateException("boom", new ArithmeticException("/ by zero"));
        }
        Output out = new Output();
        out.greeting = "Hello " + in.getName();
        out.calls = calls;
        out.total = BigDecimal.valueOf(in.getRatio()).multiply(BigDecimal.TEN);
        out.context.put("requestId", context.getAwsRequestId());
        out.context.put("remaining", context.getRemainingTimeInMillis());
        out.context.put("memory", context.getMemoryLimitInMB());
        out.context.put("arn", context.getInvokedFunctionArn());
        out.context.put("function", context.getFunctionName() + ":" + context.getFunctionVersion());
        out.context.put("logs", context.getLogGroupName() + context.getLogStreamName());
        if (context.getClientContext() != null) {
            out.context.put("client", context.getClientContext().getClient().getAppTitle());
            out.context.put("custom", context.getClientContext().getCustom());
            out.context.put("env", context.getClientContext().getEnvironment());
        }
        if (context.getIdentity() != null) {
            out.context.put("identity", context.getIdentity().getIdentityId());
        }
        if (in.getNested() != null && in.getNested().items != null) {
            for (Item item : in.getNested().items) {
                out.ids.add(item.getId());
            }
        }
        return out;
    }

    public String text(String in) {
        return in.toUpperCase() + " \u00e9\n";
    }

    public static void nothing() {
    }
}
