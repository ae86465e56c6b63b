package shoal.runtime;

import java.lang.reflect.AccessibleObject;
import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Types and bean properties as AWS's runtime's Jackson sees them: generic type resolution, public getters and
 * fields out (in field declaration order), public setters and fields in, Java records, and relaxed names for the
 * aws-lambda-java-events classes (standing in for AWS's event mix-ins).
 */
final class Beans {
    private Beans() {
    }

    static final String EVENTS_PACKAGE = "com.amazonaws.services.lambda.runtime.events.";

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

    static Type typeArg(Type type, int index) {
        if (type instanceof ParameterizedType) {
            Type[] args = ((ParameterizedType) type).getActualTypeArguments();
            if (index < args.length) {
                return args[index];
            }
        }
        return Object.class;
    }

    // ---- properties ------------------------------------------------------------------------------------

    static final class Prop {
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

    static final class Props {
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

    static Props props(Class<?> c) {
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

    static String normalise(String name) {
        StringBuilder sb = new StringBuilder(name.length());
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (Character.isLetterOrDigit(c)) {
                sb.append(Character.toLowerCase(c));
            }
        }
        return sb.toString();
    }

    static <T extends AccessibleObject> T accessible(T member) {
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
            throw new Pojo.ConversionException("Cannot introspect record " + c.getName(), e);
        }
    }

}
