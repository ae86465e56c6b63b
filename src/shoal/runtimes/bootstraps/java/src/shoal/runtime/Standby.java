package shoal.runtime;

import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.instrument.Instrumentation;
import java.lang.reflect.Field;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Shoal's pre-started Java runtime. A JVM started (as a Java agent, {@code -javaagent:bootstrap.jar}) before
 * any function is known loads the runtime, says it is ready ({@code R} on the descriptor after
 * {@code SHOAL_STANDBY_FD}), then blocks until the platform writes, up to end-of-file, the function's
 * environment as {@code {"env": {...}, "cwd": "..."}}. By then the function's code is in place and the JVM
 * already stands in the task root. {@link System#getenv()} (and a {@link ProcessBuilder}'s environment)
 * return the function's variables from then on.
 *
 * <p>Replacing the environment reaches into {@code java.lang.ProcessEnvironment}: the agent opens
 * {@code java.lang} and {@code java.util} to this runtime's own module only (the class path's), never to the
 * function's classes, which have their own class loader. The process's own (C library) environment, which
 * child processes inherit, is replaced by {@code libshoalstandby.so} ({@code native/standby.c}).
 */
public final class Standby {
    private Standby() {
    }

    /** {@code args}: the path of {@code libshoalstandby.so}. */
    public static void premain(String args, Instrumentation instrumentation) {
        System.load(args);
        Module runtime = Standby.class.getModule();
        Map<String, Set<Module>> opens = new HashMap<>();
        opens.put("java.lang", Set.of(runtime));
        opens.put("java.util", Set.of(runtime));
        instrumentation.redefineModule(Object.class.getModule(), Set.of(), Map.of(), opens, Set.of(), Map.of());
    }

    /** Waits for the function; returns its environment, now also {@link System#getenv()}'s. */
    static Map<String, String> await(int fd) throws IOException, ReflectiveOperationException {
        warm();
        try (OutputStream ready = new FileOutputStream("/proc/self/fd/" + (fd + 1))) {
            ready.write('R'); // a new descriptor of the pipe: the original stays open while this JVM lives
        }
        java.io.ByteArrayOutputStream read = new java.io.ByteArrayOutputStream();
        try (InputStream in = new FileInputStream("/proc/self/fd/" + fd)) {
            byte[] buffer = new byte[65536]; // not readAllBytes: some JDKs seek, which a pipe cannot
            for (int n; (n = in.read(buffer)) > 0; ) {
                read.write(buffer, 0, n);
            }
        }
        byte[] message = read.toByteArray();
        if (message.length == 0) {
            System.exit(0); // never specialised: the platform let it go
        }
        Object parsed = Json.parse(message);
        Map<String, String> env = new LinkedHashMap<>();
        if (parsed instanceof Map) {
            Object given = ((Map<?, ?>) parsed).get("env");
            if (given instanceof Map) {
                for (Map.Entry<?, ?> e : ((Map<?, ?>) given).entrySet()) {
                    env.put(String.valueOf(e.getKey()), String.valueOf(e.getValue()));
                }
            }
        }
        replaceEnvironment(env);
        String[] pairs = new String[env.size() * 2];
        int i = 0;
        for (Map.Entry<String, String> e : env.entrySet()) {
            pairs[i++] = e.getKey();
            pairs[i++] = e.getValue();
        }
        if (!replaceNativeEnvironment(pairs)) {
            throw new IOException("the process environment could not be replaced");
        }
        return env;
    }

    /** The C library's environment (what child processes inherit and native code reads), in pairs. */
    private static native boolean replaceNativeEnvironment(String[] pairs);

    /** Loads and links the runtime's own classes while nobody waits. */
    private static void warm() {
        String[] names = {"Config", "Handlers", "Invocation", "Json", "LambdaContextImpl", "PojoWriter", "Pojo",
            "Beans", "RuntimeClient", "UserFault", "Log"};
        ClassLoader loader = Standby.class.getClassLoader();
        for (String name : names) {
            try {
                Class.forName("shoal.runtime." + name, false, loader);
            } catch (ClassNotFoundException e) {
                // a class the runtime no longer has: nothing to warm
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static void replaceEnvironment(Map<String, String> env) throws ReflectiveOperationException {
        Field unmodifiable = Class.forName("java.lang.ProcessEnvironment")
                .getDeclaredField("theUnmodifiableEnvironment");
        unmodifiable.setAccessible(true);
        Field wrapped = Class.forName("java.util.Collections$UnmodifiableMap").getDeclaredField("m");
        wrapped.setAccessible(true);
        // the StringEnvironment over the map that getenv and ProcessBuilder both read
        Map<String, String> live = (Map<String, String>) wrapped.get(unmodifiable.get(null));
        live.clear();
        live.putAll(env);
    }
}
