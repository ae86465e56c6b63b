package shoal.runtime;

import java.lang.reflect.AccessibleObject;
import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Calendar;
import java.util.Collection;
import java.util.Date;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Converts JSON trees to typed Java values and Java values to JSON, the way AWS's Java runtime does with its
 * (shaded, annotation-blind) Jackson: public setters and fields in, public getters and fields out, nulls
 * left out of objects, unknown properties ignored, lenient scalar coercion, Java records, java.time values as
 * Jackson's JavaTimeModule writes them. Classes of the aws-lambda-java-events library are also matched by
 * relaxed property names ({@code Records}, {@code detail-type} …), standing in for AWS's event mix-ins.
 */
final class Pojo {
    private Pojo() {
    }

    static final class ConversionException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        ConversionException(String message) {
            super(message);
        }

        ConversionException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private static final String EVENTS_PACKAGE = "com.amazonaws.services.lambda.runtime.events.";

    // ---- types -----------------------------------------------------------------------------------------

    static Class<?> raw(Type type) {
        if (type instanceof Class) {
            return (Class<?>) type;
        }
        if (type instanceof ParameterizedType) {
            return raw(((ParameterizedType) type).getRawType());
        }
        if (type instanceof GenericArrayType) {
            return Array.newInstance(raw(((GenericArrayType) type).getGenericComponentType()), 0).getClass();
        }
        if (type instanceof WildcardType) {
            return raw(((WildcardType) type).getUpperBounds()[0]);
        }
        if (type instanceof TypeVariable) {
            Type[] bounds = ((TypeVariable<?>) type).getBounds();
            return bounds.length == 0 ? Object.class : raw(bounds[0]);
        }
        return Object.class;
    }

    /** Substitutes the type variables bound in {@code bindings}. */
    static Type resolve(Type type, Map<TypeVariable<?>, Type> bindings) {
        if (type instanceof TypeVariable) {
            Type bound = bindings == null ? null : bindings.get(type);
            if (bound != null) {
                return bound;
            }
            Type[] bounds = ((TypeVariable<?>) type).getBounds();
            return bounds.length == 0 ? Object.class : bounds[0];
        }
        if (type instanceof WildcardType) {
            return resolve(((WildcardType) type).getUpperBounds()[0], bindings);
        }
        if (type instanceof ParameterizedType && bindings != null && !bindings.isEmpty()) {
            ParameterizedType p = (ParameterizedType) type;
            Type[] args = p.getActualTypeArguments();
            Type[] resolved = new Type[args.length];
            boolean changed = false;
            for (int i = 0; i < args.length; i++) {
                resolved[i] = resolve(args[i], bindings);
                changed |= resolved[i] != args[i];
            }
            return changed ? new Parameterized(raw(p.getRawType()), resolved) : p;
        }
        if (type instanceof GenericArrayType) {
            Type component = resolve(((GenericArrayType) type).getGenericComponentType(), bindings);
            return Array.newInstance(raw(component), 0).getClass();
        }
        return type;
    }

    /** The type variable bindings of a parameterized type (and of its class's superclasses). */
    static Map<TypeVariable<?>, Type> bindings(Type type, Map<TypeVariable<?>, Type> outer) {
        Map<TypeVariable<?>, Type> map = new HashMap<>();
        if (type instanceof ParameterizedType) {
            ParameterizedType p = (ParameterizedType) type;
            TypeVariable<?>[] vars = raw(p.getRawType()).getTypeParameters();
            Type[] args = p.getActualTypeArguments();
            for (int i = 0; i < vars.length && i < args.length; i++) {
                map.put(vars[i], resolve(args[i], outer));
            }
        }
        Class<?> c = raw(type);
        while (c != null && c != Object.class) {
            Type sup = c.getGenericSuperclass();
            if (sup instanceof ParameterizedType) {
                ParameterizedType p = (ParameterizedType) sup;
                TypeVariable<?>[] vars = raw(p.getRawType()).getTypeParameters();
                Type[] args = p.getActualTypeArguments();
                for (int i = 0; i < vars.length && i < args.length; i++) {
                    map.putIfAbsent(vars[i], resolve(args[i], map));
                }
            }
            c = c.getSuperclass();
        }
        return map;
    }

    static final class Parameterized implements ParameterizedType {
        private final Class<?> rawType;
        private final Type[] args;

        Parameterized(Class<?> rawType, Type[] args) {
            this.rawType = rawType;
            this.args = args;
        }

        public Type[] getActualTypeArguments() {
            return args.clone();
        }

        public Type getRawType() {
            return rawType;
        }

        public Type getOwnerType() {
            return null;
        }
    }

    private static Type typeArg(Type type, int index) {
        if (type instanceof ParameterizedType) {
            Type[] args = ((ParameterizedType) type).getActualTypeArguments();
            if (index < args.length) {
                return args[index];
            }
        }
        return Object.class;
    }

    // ---- properties ------------------------------------------------------------------------------------

    private static final class Prop {
        final String name;
        final Method method;
        final Field field;
        final Type type;

        Prop(String name, Method method, Field field, Type type) {
            this.name = name;
            this.method = method;
            this.field = field;
            this.type = type;
        }

        Object get(Object target) throws ReflectiveOperationException {
            return method != null ? method.invoke(target) : field.get(target);
        }

        void set(Object target, Object value) throws ReflectiveOperationException {
            if (method != null) {
                method.invoke(target, value);
            } else {
                field.set(target, value);
            }
        }
    }

    private static final class Props {
        final Prop[] readers;
        final Map<String, Prop> writers;
        final Map<String, Prop> relaxed; // events classes only: normalised name -> writer
        final Prop[] components; // records: canonical constructor order
        final Constructor<?> canonical; // records
        volatile Constructor<?> constructor;

        Props(Prop[] readers, Map<String, Prop> writers, Map<String, Prop> relaxed, Prop[] components,
                Constructor<?> canonical) {
            this.readers = readers;
            this.writers = writers;
            this.relaxed = relaxed;
            this.components = components;
            this.canonical = canonical;
        }
    }

    private static final Map<Class<?>, Props> PROPS = new ConcurrentHashMap<>();

    private static Props props(Class<?> c) {
        Props p = PROPS.get(c);
        if (p == null) {
            p = introspect(c);
            PROPS.put(c, p);
        }
        return p;
    }

    /** java.beans.Introspector.decapitalize: "URL" stays, "Name" becomes "name". */
    static String decapitalize(String name) {
        if (name.isEmpty()) {
            return name;
        }
        if (name.length() > 1 && Character.isUpperCase(name.charAt(0)) && Character.isUpperCase(name.charAt(1))) {
            return name;
        }
        return Character.toLowerCase(name.charAt(0)) + name.substring(1);
    }

    private static String normalise(String name) {
        StringBuilder sb = new StringBuilder(name.length());
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (Character.isLetterOrDigit(c)) {
                sb.append(Character.toLowerCase(c));
            }
        }
        return sb.toString();
    }

    private static <T extends AccessibleObject> T accessible(T member) {
        try {
            member.setAccessible(true);
        } catch (RuntimeException e) {
            // module rules: leave it as it is (public members of exported packages still work)
        }
        return member;
    }

    private static final Method IS_RECORD = method(Class.class, "isRecord");
    private static final Method RECORD_COMPONENTS = method(Class.class, "getRecordComponents");

    private static Method method(Class<?> c, String name) {
        try {
            return c.getMethod(name);
        } catch (NoSuchMethodException e) {
            return null; // Java < 16
        }
    }

    private static boolean isRecord(Class<?> c) {
        if (IS_RECORD == null || c.getSuperclass() == null || !c.getSuperclass().getName().equals("java.lang.Record")) {
            return false;
        }
        try {
            return (Boolean) IS_RECORD.invoke(c);
        } catch (ReflectiveOperationException e) {
            return false;
        }
    }

    private static Props introspect(Class<?> c) {
        if (isRecord(c)) {
            return introspectRecord(c);
        }
        boolean events = c.getName().startsWith(EVENTS_PACKAGE);
        // Output: Jackson orders properties by field declaration (superclass first), then getter-only ones.
        LinkedHashMap<String, Prop> readers = new LinkedHashMap<>();
        List<Class<?>> chain = new ArrayList<>();
        for (Class<?> k = c; k != null && k != Object.class; k = k.getSuperclass()) {
            chain.add(0, k);
        }
        List<Field> fields = new ArrayList<>();
        for (Class<?> k : chain) {
            for (Field f : k.getDeclaredFields()) {
                if (!Modifier.isStatic(f.getModifiers()) && !f.isSynthetic()) {
                    fields.add(f);
                    readers.put(f.getName(), null);
                }
            }
        }
        Map<String, Prop> writers = new HashMap<>();
        for (Field f : fields) {
            int mod = f.getModifiers();
            if (Modifier.isPublic(mod) && !Modifier.isTransient(mod)) {
                Prop prop = new Prop(f.getName(), null, accessible(f), f.getGenericType());
                readers.put(f.getName(), prop);
                if (!Modifier.isFinal(mod)) {
                    writers.put(f.getName(), prop);
                }
            }
        }
        for (Method m : c.getMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || m.isBridge() || m.isSynthetic()
                    || m.getDeclaringClass() == Object.class) {
                continue;
            }
            String n = m.getName();
            int params = m.getParameterCount();
            if (params == 0) {
                String name = null;
                if (n.startsWith("get") && n.length() > 3 && m.getReturnType() != void.class) {
                    name = decapitalize(n.substring(3));
                } else if (n.startsWith("is") && n.length() > 2 && m.getReturnType() == boolean.class) {
                    name = decapitalize(n.substring(2));
                }
                if (name != null && !isGroovyMeta(m)) {
                    Prop old = readers.get(name);
                    if (old == null || old.method == null || n.startsWith("get")) {
                        readers.put(name, new Prop(name, accessible(m), null, m.getGenericReturnType()));
                    }
                }
            } else if (params == 1 && n.startsWith("set") && n.length() > 3) {
                String name = decapitalize(n.substring(3));
                Prop old = writers.get(name);
                if (old == null || old.method == null || preferSetter(m, old.method)) {
                    writers.put(name, new Prop(name, accessible(m), null, m.getGenericParameterTypes()[0]));
                }
            }
        }
        List<Prop> out = new ArrayList<>();
        for (Prop p : readers.values()) {
            if (p != null) {
                out.add(p);
            }
        }
        Map<String, Prop> relaxed = null;
        if (events) {
            // AWS's runtime gives the events library mix-ins; relaxed names and private fields stand in.
            for (Field f : fields) {
                int mod = f.getModifiers();
                if (!Modifier.isFinal(mod) && !Modifier.isTransient(mod) && !writers.containsKey(f.getName())) {
                    writers.put(f.getName(), new Prop(f.getName(), null, accessible(f), f.getGenericType()));
                }
            }
            relaxed = new HashMap<>();
            for (Prop p : writers.values()) {
                relaxed.putIfAbsent(normalise(p.name), p);
            }
        }
        return new Props(out.toArray(new Prop[0]), writers, relaxed, null, null);
    }

    private static boolean isGroovyMeta(Method m) {
        return m.getName().equals("getMetaClass") && m.getReturnType().getName().equals("groovy.lang.MetaClass");
    }

    /** Among overloaded setters, prefer the one taking a String-friendly or declared-in-subclass type. */
    private static boolean preferSetter(Method candidate, Method current) {
        Class<?> a = candidate.getParameterTypes()[0];
        Class<?> b = current.getParameterTypes()[0];
        if (a == b) {
            return current.getDeclaringClass().isAssignableFrom(candidate.getDeclaringClass());
        }
        return b == Object.class;
    }

    private static Props introspectRecord(Class<?> c) {
        try {
            Object[] comps = (Object[]) RECORD_COMPONENTS.invoke(c);
            Prop[] props = new Prop[comps.length];
            Class<?>[] types = new Class<?>[comps.length];
            Map<String, Prop> writers = new HashMap<>();
            for (int i = 0; i < comps.length; i++) {
                Class<?> rc = comps[i].getClass();
                String name = (String) rc.getMethod("getName").invoke(comps[i]);
                Type type = (Type) rc.getMethod("getGenericType").invoke(comps[i]);
                Method accessor = accessible((Method) rc.getMethod("getAccessor").invoke(comps[i]));
                types[i] = (Class<?>) rc.getMethod("getType").invoke(comps[i]);
                props[i] = new Prop(name, accessor, null, type);
                writers.put(name, props[i]);
            }
            Constructor<?> canonical = accessible(c.getDeclaredConstructor(types));
            return new Props(props, writers, null, props, canonical);
        } catch (ReflectiveOperationException e) {
            throw new ConversionException("Cannot introspect record " + c.getName(), e);
        }
    }

    // ---- JSON tree -> Java ----------------------------------------------------------------------------

    static Object fromTree(Object node, Type type) {
        return convert(node, type, null, 0);
    }

    private static String describe(Object node) {
        if (node instanceof Map) {
            return "Object value (token `JsonToken.START_OBJECT`)";
        }
        if (node instanceof List) {
            return "Array value (token `JsonToken.START_ARRAY`)";
        }
        if (node instanceof String) {
            return "String value (" + Json.quote((String) node) + ")";
        }
        if (node instanceof Boolean) {
            return "Boolean value (" + node + ")";
        }
        if (node instanceof Number) {
            return "Number value (" + node + ")";
        }
        return "null";
    }

    private static ConversionException mismatch(Type type, Object node) {
        return new ConversionException("Cannot deserialize value of type `" + raw(type).getTypeName()
                + "` from " + describe(node));
    }

    private static Object convert(Object node, Type type, Map<TypeVariable<?>, Type> bindings, int depth) {
        if (depth > 1000) {
            throw new ConversionException("JSON nested too deeply");
        }
        type = resolve(type, bindings);
        Class<?> c = raw(type);
        if (node == null) {
            if (c == Optional.class) {
                return Optional.empty();
            }
            return c.isPrimitive() ? primitiveDefault(c) : null;
        }
        if (c == Object.class || c == java.io.Serializable.class || c == Comparable.class) {
            return node;
        }
        if (c == String.class || c == CharSequence.class) {
            return toStringValue(node, type);
        }
        if (c.isPrimitive() || Number.class.isAssignableFrom(c) || c == Boolean.class || c == Character.class) {
            return scalar(node, c, type);
        }
        if (c == Optional.class) {
            return Optional.ofNullable(convert(node, typeArg(type, 0), null, depth + 1));
        }
        if (c.isEnum()) {
            return enumValue(node, c, type);
        }
        if (c.isArray()) {
            return array(node, type, c, depth);
        }
        if (Collection.class.isAssignableFrom(c) || c == Iterable.class) {
            return collection(node, type, c, depth);
        }
        if (Map.class.isAssignableFrom(c)) {
            return map(node, type, c, depth);
        }
        if (node instanceof List && !(c == List.class)) {
            List<?> list = (List<?>) node;
            if (list.size() == 1 && !(list.get(0) instanceof List)) { // UNWRAP_SINGLE_VALUE_ARRAYS
                return convert(list.get(0), type, null, depth + 1);
            }
        }
        Object special = special(node, c, type);
        if (special != NONE) {
            return special;
        }
        if (node instanceof Map) {
            return bean((Map<?, ?>) node, type, c, depth);
        }
        if ("".equals(node)) { // ACCEPT_EMPTY_STRING_AS_NULL_OBJECT
            return null;
        }
        if (node instanceof String) {
            Object fromString = fromString((String) node, c);
            if (fromString != NONE) {
                return fromString;
            }
        }
        throw mismatch(type, node);
    }

    private static final Object NONE = new Object();

    private static Object primitiveDefault(Class<?> c) {
        if (c == boolean.class) {
            return Boolean.FALSE;
        }
        if (c == char.class) {
            return '\0';
        }
        if (c == long.class) {
            return 0L;
        }
        if (c == double.class) {
            return 0.0d;
        }
        if (c == float.class) {
            return 0.0f;
        }
        if (c == short.class) {
            return (short) 0;
        }
        if (c == byte.class) {
            return (byte) 0;
        }
        return 0;
    }

    private static String toStringValue(Object node, Type type) {
        if (node instanceof String) {
            return (String) node;
        }
        if (node instanceof Number || node instanceof Boolean) {
            return node.toString();
        }
        if (node instanceof List && ((List<?>) node).size() == 1) {
            return toStringValue(((List<?>) node).get(0), type);
        }
        throw mismatch(type, node);
    }

    private static Object scalar(Object node, Class<?> c, Type type) {
        if (node instanceof List && ((List<?>) node).size() == 1) {
            node = ((List<?>) node).get(0);
            if (node == null) {
                return c.isPrimitive() ? primitiveDefault(c) : null;
            }
        }
        if (c == boolean.class || c == Boolean.class) {
            if (node instanceof Boolean) {
                return node;
            }
            if (node instanceof Number) {
                return ((Number) node).intValue() != 0;
            }
            if (node instanceof String) {
                String s = ((String) node).trim();
                if (s.equalsIgnoreCase("true")) {
                    return Boolean.TRUE;
                }
                if (s.equalsIgnoreCase("false")) {
                    return Boolean.FALSE;
                }
                if (s.isEmpty()) {
                    return c.isPrimitive() ? Boolean.FALSE : null;
                }
            }
            throw mismatch(type, node);
        }
        if (c == char.class || c == Character.class) {
            if (node instanceof String && ((String) node).length() == 1) {
                return ((String) node).charAt(0);
            }
            if (node instanceof Integer) {
                return (char) ((Integer) node).intValue();
            }
            throw mismatch(type, node);
        }
        Number n;
        if (node instanceof Number) {
            n = (Number) node;
        } else if (node instanceof String) {
            String s = ((String) node).trim();
            if (s.isEmpty()) {
                return c.isPrimitive() ? primitiveDefault(c) : null;
            }
            try {
                n = new BigDecimal(s);
            } catch (NumberFormatException e) {
                if (s.equals("NaN") || s.endsWith("Infinity")) {
                    n = Double.valueOf(s);
                } else {
                    throw new ConversionException("Cannot deserialize value of type `" + c.getTypeName()
                            + "` from String " + Json.quote(s) + ": not a valid `" + c.getTypeName() + "` value");
                }
            }
        } else if (node instanceof Boolean) {
            n = ((Boolean) node) ? 1 : 0;
        } else {
            throw mismatch(type, node);
        }
        if (c == int.class || c == Integer.class) {
            return n.intValue();
        }
        if (c == long.class || c == Long.class) {
            return n.longValue();
        }
        if (c == double.class || c == Double.class) {
            return n.doubleValue();
        }
        if (c == float.class || c == Float.class) {
            return n.floatValue();
        }
        if (c == short.class || c == Short.class) {
            return n.shortValue();
        }
        if (c == byte.class || c == Byte.class) {
            return n.byteValue();
        }
        if (c == BigDecimal.class) {
            if (n instanceof BigDecimal) {
                return n;
            }
            if (n instanceof BigInteger) {
                return new BigDecimal((BigInteger) n);
            }
            if (n instanceof Double || n instanceof Float) {
                return new BigDecimal(n.toString());
            }
            return BigDecimal.valueOf(n.longValue());
        }
        if (c == BigInteger.class) {
            if (n instanceof BigInteger) {
                return n;
            }
            if (n instanceof BigDecimal) {
                return ((BigDecimal) n).toBigInteger();
            }
            return BigInteger.valueOf(n.longValue());
        }
        if (c == Number.class) {
            return node instanceof Number ? node : n;
        }
        throw mismatch(type, node);
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object enumValue(Object node, Class<?> c, Type type) {
        Object[] constants = c.getEnumConstants();
        if (node instanceof String) {
            String s = (String) node;
            for (Object e : constants) {
                if (((Enum) e).name().equals(s)) {
                    return e;
                }
            }
            return null; // READ_UNKNOWN_ENUM_VALUES_AS_NULL
        }
        if (node instanceof Integer) {
            int i = (Integer) node;
            if (i >= 0 && i < constants.length) {
                return constants[i];
            }
            return null;
        }
        throw mismatch(type, node);
    }

    private static Object array(Object node, Type type, Class<?> c, int depth) {
        Class<?> component = c.getComponentType();
        if (component == byte.class && node instanceof String) {
            return Base64.getMimeDecoder().decode((String) node);
        }
        if (component == char.class && node instanceof String) {
            return ((String) node).toCharArray();
        }
        Type componentType = type instanceof GenericArrayType
                ? ((GenericArrayType) type).getGenericComponentType() : component;
        List<?> items = node instanceof List ? (List<?>) node : singleton(node);
        Object array = Array.newInstance(component, items.size());
        for (int i = 0; i < items.size(); i++) {
            Array.set(array, i, convert(items.get(i), componentType, null, depth + 1));
        }
        return array;
    }

    private static List<Object> singleton(Object node) {
        List<Object> list = new ArrayList<>(1);
        if (!"".equals(node)) {
            list.add(node);
        }
        return list;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object collection(Object node, Type type, Class<?> c, int depth) {
        Type item = typeArg(type, 0);
        if (node instanceof Map) {
            throw mismatch(type, node);
        }
        List<?> items = node instanceof List ? (List<?>) node : singleton(node); // ACCEPT_SINGLE_VALUE_AS_ARRAY
        Collection<Object> out;
        if (EnumSet.class.isAssignableFrom(c)) {
            out = (Collection) EnumSet.noneOf((Class) raw(item));
        } else if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            if (SortedSet.class.isAssignableFrom(c)) {
                out = new TreeSet<>();
            } else if (Set.class.isAssignableFrom(c)) {
                out = new LinkedHashSet<>();
            } else if (java.util.Queue.class.isAssignableFrom(c)) {
                out = new java.util.ArrayDeque<>();
            } else {
                out = new ArrayList<>(items.size());
            }
        } else {
            out = (Collection<Object>) instantiate(c);
        }
        for (Object o : items) {
            out.add(convert(o, item, null, depth + 1));
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    private static Object map(Object node, Type type, Class<?> c, int depth) {
        if (!(node instanceof Map)) {
            if ("".equals(node)) {
                return null;
            }
            throw mismatch(type, node);
        }
        Type keyType = typeArg(type, 0);
        Type valueType = typeArg(type, 1);
        Map<Object, Object> out;
        if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            out = SortedMap.class.isAssignableFrom(c) ? new TreeMap<>() : new LinkedHashMap<>();
        } else {
            out = (Map<Object, Object>) instantiate(c);
        }
        Class<?> keyClass = raw(keyType);
        for (Map.Entry<?, ?> e : ((Map<?, ?>) node).entrySet()) {
            Object key = e.getKey();
            if (keyClass != Object.class && keyClass != String.class) {
                key = convert(e.getKey(), keyType, null, depth + 1);
            }
            out.put(key, convert(e.getValue(), valueType, null, depth + 1));
        }
        return out;
    }

    private static Object instantiate(Class<?> c) {
        Props p = props(c);
        Constructor<?> ctor = p.constructor;
        try {
            if (ctor == null) {
                ctor = accessible(c.getDeclaredConstructor());
                p.constructor = ctor;
            }
            return ctor.newInstance();
        } catch (NoSuchMethodException e) {
            if (c.getName().startsWith(EVENTS_PACKAGE)) {
                return allocate(c);
            }
            if (c.getEnclosingClass() != null && !Modifier.isStatic(c.getModifiers())) {
                throw new ConversionException("Cannot construct instance of `" + c.getName()
                        + "`: non-static inner classes like this can only by instantiated using default, "
                        + "no-argument constructor");
            }
            throw new ConversionException("Cannot construct instance of `" + c.getName()
                    + "` (no Creators, like default constructor, exist): cannot deserialize from Object value "
                    + "(no delegate- or property-based Creator)");
        } catch (InvocationTargetException e) {
            throw new ConversionException("Cannot construct instance of `" + c.getName() + "`, problem: "
                    + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new ConversionException("Cannot construct instance of `" + c.getName() + "`: " + e, e);
        }
    }

    private static Object allocate(Class<?> c) {
        try {
            Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
            Field f = unsafeClass.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            return unsafeClass.getMethod("allocateInstance", Class.class).invoke(f.get(null), c);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new ConversionException("Cannot construct instance of `" + c.getName() + "`", e);
        }
    }

    private static Object bean(Map<?, ?> node, Type type, Class<?> c, int depth) {
        if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            throw new ConversionException("Cannot construct instance of `" + c.getName()
                    + "` (no Creators, like default constructor, exist): abstract types either need to be mapped "
                    + "to concrete types, have custom deserializer, or contain additional type information");
        }
        Props props = props(c);
        Map<TypeVariable<?>, Type> bindings = bindings(type, null);
        if (props.canonical != null) {
            Object[] args = new Object[props.components.length];
            for (int i = 0; i < args.length; i++) {
                Prop p = props.components[i];
                args[i] = convert(node.get(p.name), p.type, bindings, depth + 1);
            }
            try {
                return props.canonical.newInstance(args);
            } catch (InvocationTargetException e) {
                throw new ConversionException("Cannot construct instance of `" + c.getName() + "`, problem: "
                        + e.getCause().getMessage(), e.getCause());
            } catch (ReflectiveOperationException e) {
                throw new ConversionException("Cannot construct instance of `" + c.getName() + "`", e);
            }
        }
        Object target = instantiate(c);
        for (Map.Entry<?, ?> e : node.entrySet()) {
            String key = String.valueOf(e.getKey());
            Prop p = props.writers.get(key);
            if (p == null && props.relaxed != null) {
                p = props.relaxed.get(normalise(key));
            }
            if (p == null) {
                continue; // FAIL_ON_UNKNOWN_PROPERTIES is off
            }
            Object value = convert(e.getValue(), p.type, bindings, depth + 1);
            if (value == null && raw(resolve(p.type, bindings)).isPrimitive()) {
                continue;
            }
            try {
                p.set(target, value);
            } catch (InvocationTargetException ex) {
                Throwable cause = ex.getCause();
                throw new ConversionException("Problem deserializing property '" + key + "' (of type "
                        + c.getName() + "); problem: " + cause.getMessage(), cause);
            } catch (ReflectiveOperationException | IllegalArgumentException ex) {
                throw new ConversionException("Problem deserializing property '" + key + "' (of type "
                        + c.getName() + "): " + ex.getMessage(), ex);
            }
        }
        return target;
    }

    /** Values Jackson reads specially: dates, times, byte buffers, UUIDs … (NONE when not one of them). */
    private static Object special(Object node, Class<?> c, Type type) {
        if (c == Date.class || c == java.sql.Timestamp.class) {
            long millis;
            if (node instanceof Number) {
                millis = ((Number) node).longValue();
            } else if (node instanceof String) {
                millis = parseInstant((String) node).toEpochMilli();
            } else {
                throw mismatch(type, node);
            }
            return c == Date.class ? new Date(millis) : new java.sql.Timestamp(millis);
        }
        if (c == Calendar.class) {
            Calendar cal = Calendar.getInstance(java.util.TimeZone.getTimeZone("UTC"));
            cal.setTime((Date) special(node, Date.class, Date.class));
            return cal;
        }
        if (c == java.time.Instant.class && node instanceof Number) {
            BigDecimal seconds = node instanceof BigDecimal ? (BigDecimal) node : new BigDecimal(node.toString());
            long whole = seconds.longValue();
            int nanos = seconds.subtract(BigDecimal.valueOf(whole)).movePointRight(9).intValue();
            return java.time.Instant.ofEpochSecond(whole, nanos);
        }
        if (c == java.time.Instant.class && node instanceof String) {
            return parseInstant((String) node);
        }
        if (c == java.time.LocalDate.class && node instanceof List) {
            List<?> l = (List<?>) node;
            return java.time.LocalDate.of(num(l, 0), num(l, 1), num(l, 2));
        }
        if (c == java.time.LocalDateTime.class && node instanceof List) {
            List<?> l = (List<?>) node;
            return java.time.LocalDateTime.of(num(l, 0), num(l, 1), num(l, 2), num(l, 3), num(l, 4), num(l, 5),
                    num(l, 6));
        }
        if (c == java.time.LocalTime.class && node instanceof List) {
            List<?> l = (List<?>) node;
            return java.time.LocalTime.of(num(l, 0), num(l, 1), num(l, 2), num(l, 3));
        }
        if (c == java.time.Duration.class && node instanceof Number) {
            BigDecimal seconds = new BigDecimal(node.toString());
            return java.time.Duration.ofSeconds(seconds.longValue(),
                    seconds.subtract(BigDecimal.valueOf(seconds.longValue())).movePointRight(9).longValue());
        }
        if (c == ByteBuffer.class && node instanceof String) {
            return ByteBuffer.wrap(Base64.getMimeDecoder().decode((String) node));
        }
        if (c == Class.class && node instanceof String) {
            try {
                return Class.forName((String) node, false, Thread.currentThread().getContextClassLoader());
            } catch (ClassNotFoundException e) {
                throw new ConversionException("Cannot deserialize Class " + node + ": " + e, e);
            }
        }
        if (c == Locale.class && node instanceof String) {
            return Locale.forLanguageTag(((String) node).replace('_', '-'));
        }
        return NONE;
    }

    private static int num(List<?> l, int i) {
        return i < l.size() && l.get(i) instanceof Number ? ((Number) l.get(i)).intValue() : 0;
    }

    private static java.time.Instant parseInstant(String s) {
        try {
            return java.time.OffsetDateTime.parse(s).toInstant();
        } catch (java.time.format.DateTimeParseException e) {
            try {
                return java.time.Instant.parse(s);
            } catch (java.time.format.DateTimeParseException e2) {
                try {
                    return java.time.LocalDate.parse(s).atStartOfDay(java.time.ZoneOffset.UTC).toInstant();
                } catch (java.time.format.DateTimeParseException e3) {
                    try {
                        return java.time.Instant.ofEpochMilli(Long.parseLong(s.trim()));
                    } catch (NumberFormatException e4) {
                        throw new ConversionException("Cannot deserialize date from String " + Json.quote(s), e);
                    }
                }
            }
        }
    }

    private static final Map<Class<?>, Object> STRING_CREATORS = new ConcurrentHashMap<>();

    /** A single-String creator, as Jackson finds one: valueOf/fromString/parse/of, or a String constructor. */
    private static Object fromString(String s, Class<?> c) {
        Object creator = STRING_CREATORS.get(c);
        if (creator == null) {
            creator = findStringCreator(c);
            STRING_CREATORS.put(c, creator);
        }
        if (creator == NONE) {
            return NONE;
        }
        try {
            if (creator instanceof Method) {
                return ((Method) creator).invoke(null, s);
            }
            return ((Constructor<?>) creator).newInstance(s);
        } catch (InvocationTargetException e) {
            throw new ConversionException("Cannot deserialize value of type `" + c.getName() + "` from String "
                    + Json.quote(s) + ": " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new ConversionException("Cannot deserialize value of type `" + c.getName() + "`", e);
        }
    }

    private static Object findStringCreator(Class<?> c) {
        for (String name : new String[] {"valueOf", "fromString", "parse", "of", "create"}) {
            for (Class<?> param : new Class<?>[] {String.class, CharSequence.class}) {
                try {
                    Method m = c.getMethod(name, param);
                    if (Modifier.isStatic(m.getModifiers()) && c.isAssignableFrom(m.getReturnType())) {
                        return accessible(m);
                    }
                } catch (NoSuchMethodException e) {
                    // next
                }
            }
        }
        for (Class<?> param : new Class<?>[] {String.class, CharSequence.class, Object.class}) {
            try {
                return accessible(c.getConstructor(param));
            } catch (NoSuchMethodException e) {
                // next
            }
        }
        return NONE;
    }

    // ---- Java -> JSON -------------------------------------------------------------------------------------

    static byte[] toJson(Object value) {
        StringBuilder sb = new StringBuilder(256);
        write(value, sb, 0);
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    static void write(Object v, StringBuilder out, int depth) {
        if (depth > 500) {
            throw new ConversionException("Infinite recursion (StackOverflowError)");
        }
        if (v == null) {
            out.append("null");
            return;
        }
        if (v instanceof String) {
            Json.quote((String) v, out);
            return;
        }
        if (v instanceof Number) {
            if (v instanceof Double || v instanceof Float) {
                double d = ((Number) v).doubleValue();
                if (Double.isNaN(d) || Double.isInfinite(d)) {
                    Json.quote(v.toString(), out); // WRITE_NAN_AS_STRINGS
                    return;
                }
            }
            out.append(v.toString());
            return;
        }
        if (v instanceof Boolean) {
            out.append(v.toString());
            return;
        }
        if (v instanceof Character) {
            Json.quote(v.toString(), out);
            return;
        }
        if (v instanceof Map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                Object k = e.getKey();
                Json.quote(k instanceof Enum ? ((Enum<?>) k).name() : String.valueOf(k), out);
                out.append(':');
                write(e.getValue(), out, depth + 1);
            }
            out.append('}');
            return;
        }
        if (v instanceof Iterable && !isJsonNode(v.getClass())) {
            out.append('[');
            boolean first = true;
            for (Iterator<?> it = ((Iterable<?>) v).iterator(); it.hasNext();) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                write(it.next(), out, depth + 1);
            }
            out.append(']');
            return;
        }
        Class<?> c = v.getClass();
        if (c.isArray()) {
            writeArray(v, c, out, depth);
            return;
        }
        if (v instanceof Enum) {
            Json.quote(((Enum<?>) v).name(), out);
            return;
        }
        if (v instanceof Optional) {
            write(((Optional<?>) v).orElse(null), out, depth + 1);
            return;
        }
        if (writeSpecial(v, c, out)) {
            return;
        }
        writeBean(v, c, out, depth);
    }

    private static void writeArray(Object v, Class<?> c, StringBuilder out, int depth) {
        Class<?> component = c.getComponentType();
        if (component == byte.class) {
            Json.quote(Base64.getEncoder().encodeToString((byte[]) v), out);
            return;
        }
        if (component == char.class) {
            Json.quote(new String((char[]) v), out);
            return;
        }
        out.append('[');
        int n = Array.getLength(v);
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                out.append(',');
            }
            write(Array.get(v, i), out, depth + 1);
        }
        out.append(']');
    }

    private static boolean isJsonNode(Class<?> c) {
        for (Class<?> k = c; k != null; k = k.getSuperclass()) {
            if (k.getName().equals("com.fasterxml.jackson.databind.JsonNode")) {
                return true;
            }
        }
        return false;
    }

    private static boolean writeSpecial(Object v, Class<?> c, StringBuilder out) {
        if (v instanceof Date) {
            out.append(((Date) v).getTime());
            return true;
        }
        if (v instanceof Calendar) {
            out.append(((Calendar) v).getTimeInMillis());
            return true;
        }
        if (v instanceof java.time.temporal.TemporalAccessor || v instanceof java.time.temporal.TemporalAmount
                || v instanceof java.time.ZoneId) {
            writeTime(v, out);
            return true;
        }
        if (v instanceof ByteBuffer) {
            ByteBuffer b = ((ByteBuffer) v).duplicate();
            byte[] bytes = new byte[b.remaining()];
            b.get(bytes);
            Json.quote(Base64.getEncoder().encodeToString(bytes), out);
            return true;
        }
        if (v instanceof OptionalInt) {
            OptionalInt o = (OptionalInt) v;
            out.append(o.isPresent() ? String.valueOf(o.getAsInt()) : "null");
            return true;
        }
        if (v instanceof OptionalLong) {
            OptionalLong o = (OptionalLong) v;
            out.append(o.isPresent() ? String.valueOf(o.getAsLong()) : "null");
            return true;
        }
        if (v instanceof OptionalDouble) {
            OptionalDouble o = (OptionalDouble) v;
            out.append(o.isPresent() ? String.valueOf(o.getAsDouble()) : "null");
            return true;
        }
        if (v instanceof Class) {
            Json.quote(((Class<?>) v).getName(), out);
            return true;
        }
        if (v instanceof java.util.UUID || v instanceof java.net.URI || v instanceof java.net.URL
                || v instanceof java.io.File || v instanceof java.nio.file.Path || v instanceof Locale
                || v instanceof java.util.Currency || v instanceof java.util.TimeZone
                || v instanceof java.nio.charset.Charset || v instanceof java.util.regex.Pattern
                || v instanceof CharSequence) {
            Json.quote(v instanceof java.util.TimeZone ? ((java.util.TimeZone) v).getID() : v.toString(), out);
            return true;
        }
        if (isJsonNode(c)) {
            out.append(v.toString()); // the user's own Jackson tree: its toString() is its JSON
            return true;
        }
        return false;
    }

    /** java.time values as jackson-datatype-jsr310 writes them with its defaults (timestamps). */
    private static void writeTime(Object v, StringBuilder out) {
        if (v instanceof java.time.Instant) {
            java.time.Instant i = (java.time.Instant) v;
            out.append(seconds(i.getEpochSecond(), i.getNano()));
        } else if (v instanceof java.time.ZonedDateTime) {
            java.time.Instant i = ((java.time.ZonedDateTime) v).toInstant();
            out.append(seconds(i.getEpochSecond(), i.getNano()));
        } else if (v instanceof java.time.OffsetDateTime) {
            java.time.Instant i = ((java.time.OffsetDateTime) v).toInstant();
            out.append(seconds(i.getEpochSecond(), i.getNano()));
        } else if (v instanceof java.time.Duration) {
            java.time.Duration d = (java.time.Duration) v;
            out.append(seconds(d.getSeconds(), d.getNano()));
        } else if (v instanceof java.time.LocalDate) {
            java.time.LocalDate d = (java.time.LocalDate) v;
            out.append('[').append(d.getYear()).append(',').append(d.getMonthValue()).append(',')
                    .append(d.getDayOfMonth()).append(']');
        } else if (v instanceof java.time.LocalDateTime) {
            java.time.LocalDateTime t = (java.time.LocalDateTime) v;
            out.append('[').append(t.getYear()).append(',').append(t.getMonthValue()).append(',')
                    .append(t.getDayOfMonth()).append(',');
            timeParts(t.getHour(), t.getMinute(), t.getSecond(), t.getNano(), out);
            out.append(']');
        } else if (v instanceof java.time.LocalTime) {
            java.time.LocalTime t = (java.time.LocalTime) v;
            out.append('[');
            timeParts(t.getHour(), t.getMinute(), t.getSecond(), t.getNano(), out);
            out.append(']');
        } else if (v instanceof java.time.YearMonth) {
            java.time.YearMonth ym = (java.time.YearMonth) v;
            out.append('[').append(ym.getYear()).append(',').append(ym.getMonthValue()).append(']');
        } else if (v instanceof java.time.Year) {
            out.append(((java.time.Year) v).getValue());
        } else {
            Json.quote(v.toString(), out);
        }
    }

    private static void timeParts(int h, int m, int s, int nano, StringBuilder out) {
        out.append(h).append(',').append(m);
        if (s > 0 || nano > 0) {
            out.append(',').append(s);
            if (nano > 0) {
                out.append(',').append(nano);
            }
        }
    }

    private static String seconds(long seconds, int nanos) {
        if (seconds < 0 && nanos > 0) {
            return BigDecimal.valueOf(seconds).add(BigDecimal.valueOf(nanos, 9)).toPlainString();
        }
        StringBuilder sb = new StringBuilder().append(seconds).append('.');
        String n = Integer.toString(nanos);
        for (int i = n.length(); i < 9; i++) {
            sb.append('0');
        }
        return sb.append(n).toString();
    }

    private static void writeBean(Object v, Class<?> c, StringBuilder out, int depth) {
        Props props = props(c);
        out.append('{');
        boolean first = true;
        for (Prop p : props.readers) {
            Object value;
            try {
                value = p.get(v);
            } catch (InvocationTargetException e) {
                throw new ConversionException(e.getCause() + " (through reference chain: " + c.getName() + "[\""
                        + p.name + "\"])", e.getCause());
            } catch (ReflectiveOperationException e) {
                throw new ConversionException("Cannot read property \"" + p.name + "\" of " + c.getName(), e);
            }
            if (value == null) {
                continue; // Include.NON_NULL
            }
            if (value == v) {
                throw new ConversionException("Direct self-reference leading to cycle (through reference chain: "
                        + c.getName() + "[\"" + p.name + "\"])");
            }
            if (!first) {
                out.append(',');
            }
            first = false;
            Json.quote(p.name, out);
            out.append(':');
            write(value, out, depth + 1);
        }
        out.append('}');
    }
}
