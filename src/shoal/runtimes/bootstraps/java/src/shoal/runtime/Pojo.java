package shoal.runtime;

import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Calendar;
import java.util.Collection;
import java.util.Date;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Converts JSON trees to typed Java values the way AWS's Java runtime does with its (shaded, annotation-blind)
 * Jackson: unknown properties ignored, lenient scalar coercion, single values as one-element arrays, nested
 * beans, collections, maps, records, java.time values, single-String creators. {@link PojoWriter} writes.
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
        return new ConversionException("Cannot deserialize value of type `" + Beans.raw(type).getTypeName()
                + "` from " + describe(node));
    }

    private static Object convert(Object node, Type type, Map<TypeVariable<?>, Type> bindings, int depth) {
        if (depth > 1000) {
            throw new ConversionException("JSON nested too deeply");
        }
        type = Beans.resolve(type, bindings);
        Class<?> c = Beans.raw(type);
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
            return Optional.ofNullable(convert(node, Beans.typeArg(type, 0), null, depth + 1));
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
        Type item = Beans.typeArg(type, 0);
        if (node instanceof Map) {
            throw mismatch(type, node);
        }
        List<?> items = node instanceof List ? (List<?>) node : singleton(node); // ACCEPT_SINGLE_VALUE_AS_ARRAY
        Collection<Object> out;
        if (EnumSet.class.isAssignableFrom(c)) {
            out = (Collection) EnumSet.noneOf((Class) Beans.raw(item));
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
        Type keyType = Beans.typeArg(type, 0);
        Type valueType = Beans.typeArg(type, 1);
        Map<Object, Object> out;
        if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            out = SortedMap.class.isAssignableFrom(c) ? new TreeMap<>() : new LinkedHashMap<>();
        } else {
            out = (Map<Object, Object>) instantiate(c);
        }
        Class<?> keyClass = Beans.raw(keyType);
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
        Beans.Props p = Beans.props(c);
        Constructor<?> ctor = p.constructor;
        try {
            if (ctor == null) {
                ctor = Beans.accessible(c.getDeclaredConstructor());
                p.constructor = ctor;
            }
            return ctor.newInstance();
        } catch (NoSuchMethodException e) {
            if (c.getName().startsWith(Beans.EVENTS_PACKAGE)) {
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
        Beans.Props props = Beans.props(c);
        Map<TypeVariable<?>, Type> bindings = Beans.bindings(type, null);
        if (props.canonical != null) {
            Object[] args = new Object[props.components.length];
            for (int i = 0; i < args.length; i++) {
                Beans.Prop p = props.components[i];
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
            Beans.Prop p = props.writers.get(key);
            if (p == null && props.relaxed != null) {
                p = props.relaxed.get(Beans.normalise(key));
            }
            if (p == null) {
                continue; // FAIL_ON_UNKNOWN_PROPERTIES is off
            }
            Object value = convert(e.getValue(), p.type, bindings, depth + 1);
            if (value == null && Beans.raw(Beans.resolve(p.type, bindings)).isPrimitive()) {
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
                        return Beans.accessible(m);
                    }
                } catch (NoSuchMethodException e) {
                    // next
                }
            }
        }
        for (Class<?> param : new Class<?>[] {String.class, CharSequence.class, Object.class}) {
            try {
                return Beans.accessible(c.getConstructor(param));
            } catch (NoSuchMethodException e) {
                // next
            }
        }
        return NONE;
    }

}
