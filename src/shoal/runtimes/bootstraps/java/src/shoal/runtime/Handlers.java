package shoal.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.CustomPojoSerializer;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * Handler resolution as AWS's Java runtime does it: {@code package.Class::method} (the best public overload)
 * or {@code package.Class} implementing {@link RequestHandler} or {@link RequestStreamHandler}.
 */
final class Handlers {
    private Handlers() {
    }

    /** A loaded handler: event bytes in, result bytes out. */
    interface Handler {
        byte[] call(byte[] event, Context context) throws Throwable;
    }

    static final class FaultHandler implements Handler {
        final UserFault fault;

        FaultHandler(UserFault fault) {
            this.fault = fault;
        }

        public byte[] call(byte[] event, Context context) {
            throw fault;
        }
    }

    static String className(String handler) {
        int colon = handler.lastIndexOf("::");
        return colon < 0 ? handler : handler.substring(0, colon);
    }

    /** Loads the handler; throws a fatal {@link UserFault} for an init error, else faults are deferred. */
    static Handler find(String handler, ClassLoader loader) {
        int colon = handler.lastIndexOf("::");
        String className = colon < 0 ? handler : handler.substring(0, colon);
        String methodName = colon < 0 ? null : handler.substring(colon + 2);
        if (className.isEmpty() || (methodName != null && methodName.isEmpty())) {
            return new FaultHandler(UserFault.of("Invalid handler: `" + handler + "'"));
        }
        Class<?> cls;
        try {
            cls = Class.forName(className, true, loader);
        } catch (ClassNotFoundException e) {
            return new FaultHandler(UserFault.classNotFound(e, className));
        } catch (NoClassDefFoundError e) {
            return new FaultHandler(UserFault.initError(e, className));
        } catch (Throwable t) {
            throw UserFault.initError(t, className);
        }
        Handler h = methodName == null ? loadStreaming(cls) : loadMethod(cls, methodName);
        if (h instanceof FaultHandler && ((FaultHandler) h).fault.fatal) {
            throw ((FaultHandler) h).fault;
        }
        return h;
    }

    // ---- instances --------------------------------------------------------------------------------------

    private static Constructor<?> constructor(Class<?> c) throws Exception {
        try {
            return c.getConstructor();
        } catch (NoSuchMethodException e) {
            if (c.getEnclosingClass() != null && !Modifier.isStatic(c.getModifiers())) {
                throw new Exception("Class " + c.getName()
                        + " cannot be instantiated because it is a non-static inner class");
            }
            throw new Exception("Class " + c.getName() + " has no public zero-argument constructor", e);
        }
    }

    private static Object newInstance(Constructor<?> ctor) {
        try {
            return ctor.newInstance();
        } catch (InvocationTargetException e) {
            throw UserFault.of(e.getCause() == null ? e : e.getCause(), true);
        } catch (InstantiationException e) {
            throw UserFault.of(e.getCause() == null ? e : e.getCause(), false);
        } catch (IllegalAccessException e) {
            throw UserFault.of(e, false);
        }
    }

    private static Object instance(Class<?> c) throws Exception {
        return newInstance(constructor(c));
    }

    // ---- Class handlers -----------------------------------------------------------------------------------

    private static Handler loadStreaming(Class<?> cls) {
        try {
            if (RequestStreamHandler.class.isAssignableFrom(cls)) {
                return new StreamHandler((RequestStreamHandler) instance(cls));
            }
            if (RequestHandler.class.isAssignableFrom(cls)) {
                Type[] types = requestHandlerTypes(cls);
                if (types == null) {
                    return new FaultHandler(UserFault.of("Class " + cls.getName()
                            + " does not implement RequestHandler with concrete type parameters"));
                }
                for (Type t : types) {
                    if (t instanceof TypeVariable && !hasBound((TypeVariable<?>) t)) {
                        return new FaultHandler(UserFault.of("Class " + cls.getName()
                                + " does not implement RequestHandler with concrete type parameters: parameter "
                                + t + " has no upper bound."));
                    }
                }
                RequestHandler<?, ?> instance = (RequestHandler<?, ?>) instance(cls);
                return new PojoHandler(new RequestHandlerCall(instance), types[0], types[1]);
            }
        } catch (UserFault f) {
            return new FaultHandler(f);
        } catch (Throwable t) {
            return new FaultHandler(UserFault.of(t, false));
        }
        return new FaultHandler(UserFault.of("Class does not implement an appropriate handler interface: "
                + cls.getName()));
    }

    private static boolean hasBound(TypeVariable<?> t) {
        for (Type b : t.getBounds()) {
            if (b != Object.class) {
                return true;
            }
        }
        return false;
    }

    /** RequestHandler's I and O as the class binds them (through superclasses and interfaces). */
    static Type[] requestHandlerTypes(Class<?> cls) {
        return find(cls, new HashMap<>(), 0);
    }

    private static Type[] find(Type type, Map<TypeVariable<?>, Type> outer, int depth) {
        if (depth > 64) {
            return null;
        }
        Class<?> raw = Beans.raw(type);
        Map<TypeVariable<?>, Type> bindings = new HashMap<>();
        if (type instanceof ParameterizedType) {
            TypeVariable<?>[] vars = raw.getTypeParameters();
            Type[] args = ((ParameterizedType) type).getActualTypeArguments();
            for (int i = 0; i < vars.length && i < args.length; i++) {
                Type a = args[i];
                bindings.put(vars[i], a instanceof TypeVariable && outer.containsKey(a) ? outer.get(a) : a);
            }
        }
        if (raw == RequestHandler.class) {
            if (!(type instanceof ParameterizedType)) {
                return null;
            }
            TypeVariable<?>[] vars = raw.getTypeParameters();
            return new Type[] {bindings.get(vars[0]), bindings.get(vars[1])};
        }
        for (Type i : raw.getGenericInterfaces()) {
            if (RequestHandler.class.isAssignableFrom(Beans.raw(i))) {
                Type[] found = find(i, bindings, depth + 1);
                if (found != null) {
                    return found;
                }
            }
        }
        Type sup = raw.getGenericSuperclass();
        if (sup != null && RequestHandler.class.isAssignableFrom(Beans.raw(sup))) {
            return find(sup, bindings, depth + 1);
        }
        return null;
    }

    // ---- Class::method handlers --------------------------------------------------------------------------

    private static boolean lastIsContext(Class<?>[] params) {
        return params.length != 0 && params[params.length - 1] == Context.class;
    }

    /** Non-bridge first; then longer signatures, a trailing Context counting one extra (AWS's order). */
    private static final Comparator<Method> PRIORITY = new Comparator<Method>() {
        public int compare(Method a, Method b) {
            if (!a.isBridge() && b.isBridge()) {
                return -1;
            }
            if (!b.isBridge() && a.isBridge()) {
                return 1;
            }
            Class<?>[] pa = a.getParameterTypes();
            Class<?>[] pb = b.getParameterTypes();
            int la = pa.length + (lastIsContext(pa) ? 1 : 0);
            int lb = pb.length + (lastIsContext(pb) ? 1 : 0);
            return -Integer.compare(la, lb);
        }
    };

    private static Handler loadMethod(Class<?> cls, String name) {
        Method[] methods;
        try {
            methods = cls.getMethods();
        } catch (NoClassDefFoundError e) {
            return new FaultHandler(new UserFault("Error loading method " + name + " on class " + cls.getName(),
                    e.getClass().getName(), UserFault.trace(e), false));
        }
        int count = 0;
        for (Method m : methods) {
            if (m.getName().equals(name)) {
                methods[count++] = m;
            }
        }
        Method[] named = Arrays.copyOf(methods, count);
        Arrays.sort(named, PRIORITY); // stable: equal priorities keep getMethods() order
        for (Method m : named) {
            Handler h = overload(cls, m);
            if (h != null) {
                return h;
            }
        }
        return new FaultHandler(UserFault.of("No public method named " + name
                + " with appropriate method signature found on class " + cls.getName()));
    }

    private static Handler overload(Class<?> cls, Method m) {
        Type rType = m.getGenericReturnType();
        Type[] p = m.getGenericParameterTypes();
        if (p.length == 0) {
            return pojoMethod(cls, m, null, rType, false);
        }
        if (p.length == 1) {
            if (p[0] == InputStream.class) {
                return streamMethod(cls, m, true, false, false);
            }
            if (p[0] == OutputStream.class) {
                return streamMethod(cls, m, false, true, false);
            }
            if (p[0] == Context.class) {
                return pojoMethod(cls, m, null, rType, true);
            }
            return pojoMethod(cls, m, p[0], rType, false);
        }
        if (p.length == 2) {
            if (p[0] == OutputStream.class) {
                if (p[1] == Context.class) {
                    return streamMethod(cls, m, false, true, true);
                }
                System.err.println("Ignoring two-argument overload because first argument type is OutputStream "
                        + "and second argument type is not Context");
                return null;
            }
            if (p[0] == Context.class) {
                System.err.println("Ignoring two-argument overload because first argument type is Context");
                return null;
            }
            if (p[0] == InputStream.class) {
                if (p[1] == OutputStream.class) {
                    return streamMethod(cls, m, true, true, false);
                }
                if (p[1] == Context.class) {
                    return streamMethod(cls, m, true, false, true);
                }
                System.err.println("Ignoring two-argument overload because second parameter type, "
                        + Beans.raw(p[1]).getName() + ", is not OutputStream.");
                return null;
            }
            if (p[1] == Context.class) {
                return pojoMethod(cls, m, p[0], rType, true);
            }
            System.err.println("Ignoring two-argument overload because second parameter type is not Context");
            return null;
        }
        if (p.length == 3) {
            if (p[0] == InputStream.class && p[1] == OutputStream.class && p[2] == Context.class) {
                return streamMethod(cls, m, true, true, true);
            }
            System.err.println("Ignoring three-argument overload because argument signature is not "
                    + "(InputStream, OutputStream, Context");
            return null;
        }
        System.err.println("Ignoring an overload of method " + m.getName()
                + " because it has too many parameters: Expected at most 3, got " + p.length);
        return null;
    }

    private static Object methodTarget(Class<?> cls, Method m) throws Exception {
        if (!Modifier.isPublic(cls.getModifiers())) {
            m.setAccessible(true);
        }
        return Modifier.isStatic(m.getModifiers()) ? null : instance(cls);
    }

    private static Handler pojoMethod(Class<?> cls, Method m, Type pType, Type rType, boolean needsContext) {
        try {
            return new PojoHandler(new MethodCall(m, methodTarget(cls, m), pType != null, needsContext), pType,
                    rType);
        } catch (UserFault f) {
            return new FaultHandler(f);
        } catch (Throwable t) {
            return new FaultHandler(UserFault.of(t, false));
        }
    }

    private static Handler streamMethod(Class<?> cls, Method m, boolean in, boolean out, boolean ctx) {
        try {
            return new StreamHandler(new StreamMethodCall(m, methodTarget(cls, m), in, out, ctx));
        } catch (UserFault f) {
            return new FaultHandler(f);
        } catch (Throwable t) {
            return new FaultHandler(UserFault.of(t, false));
        }
    }

    // ---- calling ------------------------------------------------------------------------------------------

    /** Calls the user's code with a typed input; rethrows what it throws, unwrapped. */
    interface PojoCall {
        Object call(Object input, Context context) throws Throwable;
    }

    static final class RequestHandlerCall implements PojoCall {
        @SuppressWarnings("rawtypes")
        private final RequestHandler handler;

        RequestHandlerCall(RequestHandler<?, ?> handler) {
            this.handler = handler;
        }

        @SuppressWarnings("unchecked")
        public Object call(Object input, Context context) {
            return handler.handleRequest(input, context);
        }
    }

    static final class MethodCall implements PojoCall {
        private final Method m;
        private final Object target;
        private final boolean input;
        private final boolean context;

        MethodCall(Method m, Object target, boolean input, boolean context) {
            this.m = m;
            this.target = target;
            this.input = input;
            this.context = context;
        }

        public Object call(Object in, Context ctx) throws Throwable {
            Object[] args = new Object[(input ? 1 : 0) + (context ? 1 : 0)];
            int i = 0;
            if (input) {
                args[i++] = in;
            }
            if (context) {
                args[i] = ctx;
            }
            try {
                return m.invoke(target, args);
            } catch (InvocationTargetException e) {
                throw e.getCause() != null ? e.getCause() : e;
            }
        }
    }

    static final class StreamMethodCall implements RequestStreamHandler {
        private final Method m;
        private final Object target;
        private final boolean in;
        private final boolean out;
        private final boolean ctx;

        StreamMethodCall(Method m, Object target, boolean in, boolean out, boolean ctx) {
            this.m = m;
            this.target = target;
            this.in = in;
            this.out = out;
            this.ctx = ctx;
        }

        public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
            Object[] args = new Object[(in ? 1 : 0) + (out ? 1 : 0) + (ctx ? 1 : 0)];
            int i = 0;
            if (in) {
                args[i++] = input;
            }
            if (out) {
                args[i++] = output;
            }
            if (ctx) {
                args[i] = context;
            }
            try {
                m.invoke(target, args);
            } catch (InvocationTargetException e) {
                throw Handlers.<RuntimeException>sneaky(e.getCause() != null ? e.getCause() : e);
            } catch (IllegalAccessException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @SuppressWarnings("unchecked")
    static <T extends Throwable> T sneaky(Throwable t) throws T {
        throw (T) t;
    }

    static final class StreamHandler implements Handler {
        private final RequestStreamHandler handler;
        private final ByteArrayOutputStream output = new ByteArrayOutputStream(1024);

        StreamHandler(RequestStreamHandler handler) {
            this.handler = handler;
        }

        public byte[] call(byte[] event, Context context) throws Throwable {
            output.reset();
            handler.handleRequest(new ByteArrayInputStream(event), output, context);
            return output.toByteArray();
        }
    }

    private static final byte[] NULL = {'n', 'u', 'l', 'l'};

    static final class PojoHandler implements Handler {
        private final PojoCall call;
        private final Type inputType; // null: the input is not read
        private final Type outputType; // null: void
        private final CustomPojoSerializer custom;

        PojoHandler(PojoCall call, Type inputType, Type outputType) {
            this.call = call;
            this.inputType = inputType;
            this.outputType = isVoid(outputType) ? null : outputType;
            this.custom = customSerializer();
        }

        public byte[] call(byte[] event, Context context) throws Throwable {
            Object input = null;
            if (inputType != null) {
                try {
                    input = custom != null ? custom.fromJson(new ByteArrayInputStream(event), inputType)
                            : read(event, inputType);
                } catch (Throwable t) {
                    throw new RuntimeException("An error occurred during JSON parsing", jsonProblem(t));
                }
            }
            Object output = call.call(input, context);
            if (outputType == null) {
                return NULL;
            }
            try {
                if (custom != null) {
                    ByteArrayOutputStream out = new ByteArrayOutputStream();
                    custom.toJson(output, out, outputType);
                    return out.toByteArray();
                }
                return PojoWriter.toJson(output);
            } catch (Throwable t) {
                throw new RuntimeException("An error occurred during JSON serialization of response",
                        jsonProblem(t));
            }
        }
    }

    private static Object read(byte[] event, Type type) {
        if (event.length == 0) {
            return Pojo.fromTree(null, type);
        }
        return Pojo.fromTree(Json.parse(event), type);
    }

    /** Our own conversion errors become UncheckedIOException(IOException) causes, as Jackson's do on AWS. */
    private static Throwable jsonProblem(Throwable t) {
        if (t instanceof Json.ParseException || t instanceof Pojo.ConversionException) {
            IOException io = new IOException(t.getMessage(), t.getCause());
            io.setStackTrace(new StackTraceElement[0]);
            UncheckedIOException unchecked = new UncheckedIOException(io);
            unchecked.setStackTrace(new StackTraceElement[0]);
            return unchecked;
        }
        return UserFault.filter(t);
    }

    private static boolean isVoid(Type t) {
        return t == void.class || t == Void.class;
    }

    private static CustomPojoSerializer customSerializer() {
        ClassLoader loader = Thread.currentThread().getContextClassLoader();
        String service = "META-INF/services/" + CustomPojoSerializer.class.getName();
        // the function's own class path only: asking the JDK's loaders would open its module image (~4 ms)
        if (!(loader instanceof java.net.URLClassLoader)
                || ((java.net.URLClassLoader) loader).findResource(service) == null) {
            return null;
        }
        Iterator<CustomPojoSerializer> it = ServiceLoader.load(CustomPojoSerializer.class, loader).iterator();
        return it.hasNext() ? it.next() : null;
    }
}
