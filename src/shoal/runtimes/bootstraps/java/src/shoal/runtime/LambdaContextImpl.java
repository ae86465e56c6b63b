package shoal.runtime;

import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** The {@link Context} of one invocation. */
final class LambdaContextImpl implements Context {
    private final Invocation inv;
    private final Config cfg;
    private final LambdaLogger logger;
    private final CognitoIdentity identity;
    private final ClientContext clientContext;

    LambdaContextImpl(Invocation inv, Config cfg, LambdaLogger logger) {
        this.inv = inv;
        this.cfg = cfg;
        this.logger = logger;
        this.identity = inv.cognitoIdentity == null || inv.cognitoIdentity.isEmpty()
                ? null : identity(Json.parse(inv.cognitoIdentity));
        this.clientContext = inv.clientContext == null || inv.clientContext.isEmpty()
                ? null : clientContext(Json.parse(inv.clientContext));
    }

    public String getAwsRequestId() {
        return inv.requestId;
    }

    public String getLogGroupName() {
        return cfg.logGroup;
    }

    public String getLogStreamName() {
        return cfg.logStream;
    }

    public String getFunctionName() {
        return cfg.functionName;
    }

    public String getFunctionVersion() {
        return cfg.functionVersion;
    }

    public String getInvokedFunctionArn() {
        return inv.invokedArn;
    }

    public CognitoIdentity getIdentity() {
        return identity;
    }

    public ClientContext getClientContext() {
        return clientContext;
    }

    public int getRemainingTimeInMillis() {
        long left = inv.deadlineMs - System.currentTimeMillis();
        return left > 0 ? (int) Math.min(left, Integer.MAX_VALUE) : 0;
    }

    public int getMemoryLimitInMB() {
        return cfg.memoryMb;
    }

    public LambdaLogger getLogger() {
        return logger;
    }

    public String getXrayTraceId() {
        return inv.traceId;
    }

    public String getTenantId() {
        return inv.tenantId;
    }

    public String toString() {
        return "LambdaContext[awsRequestId=" + inv.requestId + ", functionName=" + cfg.functionName + "]";
    }

    private static String str(Object o) {
        return o == null ? null : o.toString();
    }

    private static CognitoIdentity identity(Object tree) {
        if (!(tree instanceof Map)) {
            return null;
        }
        Map<?, ?> m = (Map<?, ?>) tree;
        final String id = str(m.get("cognitoIdentityId"));
        final String pool = str(m.get("cognitoIdentityPoolId"));
        return new CognitoIdentity() {
            public String getIdentityId() {
                return id;
            }

            public String getIdentityPoolId() {
                return pool;
            }

            public String toString() {
                return "CognitoIdentity[identityId=" + id + ", identityPoolId=" + pool + "]";
            }
        };
    }

    private static Map<String, String> strings(Object tree) {
        if (!(tree instanceof Map)) {
            return null;
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) tree).entrySet()) {
            out.put(String.valueOf(e.getKey()), str(e.getValue()));
        }
        return out;
    }

    private static ClientContext clientContext(Object tree) {
        if (!(tree instanceof Map)) {
            return null;
        }
        Map<?, ?> m = (Map<?, ?>) tree;
        final Client client = client(m.get("client"));
        final Map<String, String> custom = strings(m.get("custom"));
        Map<String, String> envMap = strings(m.get("env"));
        final Map<String, String> env = envMap == null ? null : Collections.unmodifiableMap(envMap);
        return new ClientContext() {
            public Client getClient() {
                return client;
            }

            public Map<String, String> getCustom() {
                return custom;
            }

            public Map<String, String> getEnvironment() {
                return env;
            }
        };
    }

    private static Client client(Object tree) {
        if (!(tree instanceof Map)) {
            return null;
        }
        Map<?, ?> m = (Map<?, ?>) tree;
        final String installationId = str(m.get("installation_id"));
        final String title = str(m.get("app_title"));
        final String versionName = str(m.get("app_version_name"));
        final String versionCode = str(m.get("app_version_code"));
        final String packageName = str(m.get("app_package_name"));
        return new Client() {
            public String getInstallationId() {
                return installationId;
            }

            public String getAppTitle() {
                return title;
            }

            public String getAppVersionName() {
                return versionName;
            }

            public String getAppVersionCode() {
                return versionCode;
            }

            public String getAppPackageName() {
                return packageName;
            }
        };
    }
}
