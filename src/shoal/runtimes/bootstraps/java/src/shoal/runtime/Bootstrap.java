package shoal.runtime;

import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import com.amazonaws.services.lambda.runtime.LambdaRuntimeInternal;
import java.io.File;
import java.io.IOError;
import java.io.IOException;
import java.lang.reflect.Field;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.security.CodeSource;
import java.security.PermissionCollection;
import java.security.Permissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Shoal's Java language bootstrap: a Lambda Runtime API client that runs handlers written against
 * aws-lambda-java-core, behaving like AWS's Java runtime interface client (handler resolution, class path,
 * error shapes, context, logging). Started as
 * {@code java -XX:Flags=… -XX:SharedArchiveFile=… -cp /var/runtime/bootstrap.jar shoal.runtime.Bootstrap}.
 */
public final class Bootstrap {
    private Bootstrap() {
    }

    static final String TRACE_PROPERTY = "com.amazonaws.xray.traceHeader";

    public static void main(String[] args) {
        Map<String, String> env = System.getenv();
        String standby = env.get("SHOAL_STANDBY_FD");
        if (standby != null) {
            try {
                env = Standby.await(Integer.parseInt(standby));
            } catch (Exception e) {
                System.err.println("LAMBDA_RUNTIME the pre-started runtime could not be specialised: " + e);
                System.exit(1);
            }
        }
        int status = run(Config.fromEnvironment(env));
        Log.flush();
        System.exit(status);
    }

    /** Runs the runtime until it must exit; returns the exit status (0 only when a trainer ends it). */
    static int run(Config cfg) {
        Log.configure(cfg.logFormat, cfg.logLevel);
        Log.installStreams();
        LambdaLogger logger = new Log.ContextLogger();
        setGlobalLogger(logger);
        RuntimeClient client = new RuntimeClient(cfg.runtimeApi);
        client.connectInBackground();
        ClassLoader loader = customerClassLoader(cfg.taskRoot, cfg.optRoot);
        Thread.currentThread().setContextClassLoader(loader);

        Handlers.Handler handler;
        try {
            handler = Handlers.find(cfg.handler, loader);
        } catch (UserFault fault) {
            return initError(client, fault);
        } catch (Throwable t) {
            return initError(client, UserFault.initError(t, Handlers.className(cfg.handler)));
        }

        while (true) {
            RuntimeClient.Response next;
            try {
                next = client.next();
            } catch (IOException e) {
                return fatal("LAMBDA_RUNTIME Failed to get next invocation: " + e);
            }
            if (next.status != 200) {
                if (cfg.training && next.status == 418) {
                    client.close();
                    return 0;
                }
                return fatal("LAMBDA_RUNTIME Failed to get next invocation: the Runtime API answered "
                        + next.status);
            }
            Invocation inv = new Invocation(next);
            Log.requestId = inv.requestId;
            Log.tenantId = inv.tenantId;
            if (inv.traceId != null) {
                System.setProperty(TRACE_PROPERTY, inv.traceId);
            } else {
                System.clearProperty(TRACE_PROPERTY);
            }
            if (LambdaRuntimeInternal.getUseLog4jAppender()) {
                Log4j.putRequestId(loader, inv.requestId);
            }
            boolean exit = false;
            byte[] result = null;
            byte[] error = null;
            String errorType = null;
            try {
                result = handler.call(inv.body, new LambdaContextImpl(inv, cfg, logger));
                Thread.interrupted(); // clear an interrupt the handler left behind
            } catch (UserFault f) {
                exit = f.fatal;
                Log.error(f.reportable());
                error = f.body();
                errorType = "Runtime.BadFunctionCode";
            } catch (Throwable t) {
                exit = t instanceof VirtualMachineError || t instanceof IOError;
                try {
                    UserFault.filter(t);
                    Log.error(UserFault.reportable(t));
                    error = UserFault.errorBody(t);
                } catch (Throwable again) {
                    error = Json.treeBytes(java.util.Collections.singletonMap("errorMessage", t.getClass().getName()));
                }
                errorType = "Runtime.UserException";
            }
            Log.flush(); // the platform collects the invocation's output when the result arrives
            try {
                if (error == null) {
                    client.postResponse(inv.requestId, result, "application/json");
                } else {
                    client.postError(inv.requestId, error, errorType);
                }
            } catch (IOException e) {
                return fatal("LAMBDA_RUNTIME Failed to post the invocation result: " + e);
            }
            if (exit) {
                return 1;
            }
        }
    }

    private static int initError(RuntimeClient client, UserFault fault) {
        Log.error(fault.reportable());
        Log.flush();
        try {
            client.postInitError(fault.body(), "Runtime.BadFunctionCode");
        } catch (IOException e) {
            System.err.println("LAMBDA_RUNTIME Failed to report the init error: " + e);
        }
        return 1;
    }

    private static int fatal(String message) {
        System.err.println(message);
        Log.flush();
        return 1;
    }

    /** {@code LambdaRuntime.getLogger()} returns the same logger as {@code Context.getLogger()}. */
    private static void setGlobalLogger(LambdaLogger logger) {
        try {
            Field f = LambdaRuntime.class.getDeclaredField("logger");
            f.setAccessible(true);
            f.set(null, logger);
        } catch (ReflectiveOperationException | RuntimeException e) {
            System.err.println("LAMBDA_RUNTIME could not install the Lambda logger: " + e);
        }
    }

    /** The task root (classes), then its lib/*.jar, then /opt/java/lib/*.jar, jars in lexical order. */
    static ClassLoader customerClassLoader(String taskRoot, String optRoot) {
        List<URL> urls = new ArrayList<>();
        try {
            urls.add(new URL("file", null, -1, new File(taskRoot).getPath() + "/"));
            jars(new File(taskRoot, "lib"), urls);
            jars(new File(optRoot, "lib"), urls);
        } catch (MalformedURLException e) {
            throw new IllegalStateException(e);
        }
        return new CustomerClassLoader(urls.toArray(new URL[0]), ClassLoader.getSystemClassLoader());
    }

    /**
     * The function's class loader. Its parent is the platform loader; the aws-lambda-java-core API comes from
     * the runtime's own loader first (so a copy inside a fat JAR never wins, as on AWS), and other names skip
     * that loader (its jar would be opened and searched for every class of the function: ~4 ms cold).
     * Permissions matter only under a SecurityManager, which Lambda never installs; URLClassLoader's would
     * read the java.security file for the first class (~10 ms cold).
     */
    static final class CustomerClassLoader extends URLClassLoader {
        private static final String API = "com.amazonaws.services.lambda.runtime.";

        static {
            ClassLoader.registerAsParallelCapable();
        }

        private final ClassLoader runtime;

        CustomerClassLoader(URL[] urls, ClassLoader runtime) {
            super(urls, ClassLoader.getPlatformClassLoader());
            this.runtime = runtime;
        }

        static boolean isApi(String name) {
            if (!name.startsWith(API)) {
                return false;
            }
            int dot = name.indexOf('.', API.length());
            return dot < 0 || name.startsWith("logging.", API.length()) && name.indexOf('.', dot + 1) < 0;
        }

        @Override
        protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
            if (!isApi(name)) {
                return super.loadClass(name, resolve);
            }
            synchronized (getClassLoadingLock(name)) {
                Class<?> c = findLoadedClass(name);
                if (c == null) {
                    try {
                        c = runtime.loadClass(name);
                    } catch (ClassNotFoundException e) {
                        c = findClass(name); // a class of a newer aws-lambda-java-core than the runtime's
                    }
                }
                if (resolve) {
                    resolveClass(c);
                }
                return c;
            }
        }

        @Override
        protected PermissionCollection getPermissions(CodeSource codesource) {
            return new Permissions();
        }
    }

    private static void jars(File dir, List<URL> urls) throws MalformedURLException {
        String[] names = dir.list();
        if (names == null) {
            return;
        }
        Arrays.sort(names);
        for (String name : names) {
            if (name.endsWith(".jar")) {
                urls.add(new URL("file", null, -1, dir.getPath() + "/" + name));
            }
        }
    }
}
