package shoal.runtime;

import java.lang.reflect.Array;
import java.lang.reflect.InvocationTargetException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Calendar;
import java.util.Date;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * Writes Java values as JSON the way AWS's Java runtime's Jackson does: beans through public getters and fields
 * (nulls left out), maps, collections, arrays, enums by name, byte[] as base64, dates and java.time values as
 * Jackson's JavaTimeModule writes them by default.
 */
final class PojoWriter {
    private PojoWriter() {
    }

    // ---- Java -> JSON -------------------------------------------------------------------------------------

    static byte[] toJson(Object value) {
        StringBuilder sb = new StringBuilder(256);
        write(value, sb, 0);
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    static void write(Object v, StringBuilder out, int depth) {
        if (depth > 500) {
            throw new Pojo.ConversionException("Infinite recursion (StackOverflowError)");
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
        Beans.Props props = Beans.props(c);
        out.append('{');
        boolean first = true;
        for (Beans.Prop p : props.readers) {
            Object value;
            try {
                value = p.get(v);
            } catch (InvocationTargetException e) {
                throw new Pojo.ConversionException(e.getCause() + " (through reference chain: " + c.getName() + "[\""
                        + p.name + "\"])", e.getCause());
            } catch (ReflectiveOperationException e) {
                throw new Pojo.ConversionException("Cannot read property \"" + p.name + "\" of " + c.getName(), e);
            }
            if (value == null) {
                continue; // Include.NON_NULL
            }
            if (value == v) {
                throw new Pojo.ConversionException("Direct self-reference leading to cycle (through reference chain: "
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
