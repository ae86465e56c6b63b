package shoal.runtime;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON reader and writer. Reading gives the tree Jackson's "untyped" mode gives: objects are
 * {@link LinkedHashMap}s, arrays {@link ArrayList}s, integers {@link Integer}/{@link Long}/{@link BigInteger} by
 * size, decimals {@link Double} (or {@link BigDecimal} when a double would lose digits).
 */
final class Json {
    private Json() {
    }

    static final class ParseException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        ParseException(String message) {
            super(message);
        }
    }

    // ---- reading -------------------------------------------------------------------------------------

    static Object parse(byte[] bytes) {
        return parse(new String(bytes, StandardCharsets.UTF_8));
    }

    static Object parse(String text) {
        Reader r = new Reader(text);
        r.skipSpace();
        if (r.pos >= r.len) {
            throw new ParseException("No content to map due to end-of-input");
        }
        Object value = r.value(0);
        r.skipSpace();
        if (r.pos < r.len) {
            throw r.error("Unexpected character after the JSON value");
        }
        return value;
    }

    private static final class Reader {
        final String s;
        final int len;
        int pos;

        Reader(String s) {
            this.s = s;
            this.len = s.length();
            if (len > 0 && s.charAt(0) == '\uFEFF') {
                pos = 1;
            }
        }

        ParseException error(String message) {
            int line = 1;
            int column = 1;
            for (int i = 0; i < pos && i < len; i++) {
                if (s.charAt(i) == '\n') {
                    line++;
                    column = 1;
                } else {
                    column++;
                }
            }
            String near = pos < len ? "'" + s.charAt(pos) + "'" : "end-of-input";
            return new ParseException(message + " (" + near + " at line: " + line + ", column: " + column + ")");
        }

        void skipSpace() {
            while (pos < len) {
                char c = s.charAt(pos);
                if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                    pos++;
                } else {
                    return;
                }
            }
        }

        Object value(int depth) {
            if (depth > 1000) {
                throw error("JSON nested too deeply");
            }
            skipSpace();
            if (pos >= len) {
                throw error("Unexpected end-of-input");
            }
            char c = s.charAt(pos);
            switch (c) {
                case '{':
                    return object(depth);
                case '[':
                    return array(depth);
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                case 'N':
                    return literal("NaN", Double.NaN);
                case 'I':
                    return literal("Infinity", Double.POSITIVE_INFINITY);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw error("Unexpected character");
            }
        }

        Object literal(String word, Object value) {
            if (s.startsWith(word, pos)) {
                pos += word.length();
                return value;
            }
            throw error("Unrecognized token");
        }

        Map<String, Object> object(int depth) {
            pos++;
            Map<String, Object> map = new LinkedHashMap<>();
            skipSpace();
            if (pos < len && s.charAt(pos) == '}') {
                pos++;
                return map;
            }
            while (true) {
                skipSpace();
                if (pos >= len || s.charAt(pos) != '"') {
                    throw error("Expected a field name");
                }
                String key = string();
                skipSpace();
                if (pos >= len || s.charAt(pos) != ':') {
                    throw error("Expected ':'");
                }
                pos++;
                map.put(key, value(depth + 1));
                skipSpace();
                if (pos >= len) {
                    throw error("Unexpected end-of-input in an object");
                }
                char c = s.charAt(pos++);
                if (c == '}') {
                    return map;
                }
                if (c != ',') {
                    pos--;
                    throw error("Expected ',' or '}'");
                }
            }
        }

        List<Object> array(int depth) {
            pos++;
            List<Object> list = new ArrayList<>();
            skipSpace();
            if (pos < len && s.charAt(pos) == ']') {
                pos++;
                return list;
            }
            while (true) {
                list.add(value(depth + 1));
                skipSpace();
                if (pos >= len) {
                    throw error("Unexpected end-of-input in an array");
                }
                char c = s.charAt(pos++);
                if (c == ']') {
                    return list;
                }
                if (c != ',') {
                    pos--;
                    throw error("Expected ',' or ']'");
                }
            }
        }

        String string() {
            pos++; // opening quote
            int start = pos;
            while (pos < len) {
                char c = s.charAt(pos);
                if (c == '"') {
                    return s.substring(start, pos++);
                }
                if (c == '\\') {
                    break;
                }
                pos++;
            }
            StringBuilder sb = new StringBuilder(s.substring(start, pos));
            while (pos < len) {
                char c = s.charAt(pos++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (pos >= len) {
                    break;
                }
                char e = s.charAt(pos++);
                switch (e) {
                    case 'n':
                        sb.append('\n');
                        break;
                    case 't':
                        sb.append('\t');
                        break;
                    case 'r':
                        sb.append('\r');
                        break;
                    case 'b':
                        sb.append('\b');
                        break;
                    case 'f':
                        sb.append('\f');
                        break;
                    case 'u':
                        if (pos + 4 > len) {
                            throw error("Truncated \\u escape");
                        }
                        try {
                            sb.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
                        } catch (NumberFormatException ex) {
                            throw error("Invalid \\u escape");
                        }
                        pos += 4;
                        break;
                    default:
                        sb.append(e); // \" \\ \/ and (leniently, as AWS's parser) any other escaped character
                }
            }
            throw error("Unexpected end-of-input in a string");
        }

        Object number() {
            int start = pos;
            boolean decimal = false;
            if (s.charAt(pos) == '-') {
                pos++;
                if (s.startsWith("Infinity", pos)) {
                    pos += 8;
                    return Double.NEGATIVE_INFINITY;
                }
            }
            while (pos < len) {
                char c = s.charAt(pos);
                if (c >= '0' && c <= '9') {
                    pos++;
                } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                    decimal = true;
                    pos++;
                } else {
                    break;
                }
            }
            String text = s.substring(start, pos);
            try {
                if (!decimal) {
                    int digits = text.length() - (text.charAt(0) == '-' ? 1 : 0);
                    if (digits == 0) {
                        throw error("Invalid number");
                    }
                    if (digits <= 9) {
                        return Integer.valueOf(Integer.parseInt(text));
                    }
                    if (digits <= 18) {
                        long v = Long.parseLong(text);
                        if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
                            return Integer.valueOf((int) v);
                        }
                        return Long.valueOf(v);
                    }
                    BigInteger big = new BigInteger(text);
                    if (big.bitLength() < 64) {
                        long v = big.longValue();
                        if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
                            return Integer.valueOf((int) v);
                        }
                        return Long.valueOf(v);
                    }
                    return big;
                }
                double d = Double.parseDouble(text);
                if (text.length() > 17 && !Double.isInfinite(d)) {
                    BigDecimal exact = new BigDecimal(text);
                    if (exact.compareTo(new BigDecimal(Double.toString(d))) != 0) {
                        return exact;
                    }
                }
                return Double.valueOf(d);
            } catch (NumberFormatException ex) {
                pos = start;
                throw error("Invalid number");
            }
        }
    }

    // ---- writing -------------------------------------------------------------------------------------

    /** Appends {@code s} as a JSON string (escaping as Jackson does: quotes, backslash, control characters). */
    static void quote(String s, StringBuilder out) {
        out.append('"');
        int len = s.length();
        int run = 0;
        for (int i = 0; i < len; i++) {
            char c = s.charAt(i);
            if (c >= 0x20 && c != '"' && c != '\\') {
                continue;
            }
            out.append(s, run, i);
            run = i + 1;
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                case '\b':
                    out.append("\\b");
                    break;
                case '\f':
                    out.append("\\f");
                    break;
                default:
                    out.append("\\u00");
                    out.append(HEX[c >> 4]);
                    out.append(HEX[c & 0xF]);
            }
        }
        out.append(s, run, len);
        out.append('"');
    }

    private static final char[] HEX = "0123456789ABCDEF".toCharArray();

    static String quote(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2);
        quote(s, sb);
        return sb.toString();
    }

    /** Writes a tree of maps, lists, strings, numbers, booleans and nulls (no POJOs: see {@link Pojo}). */
    static void writeTree(Object value, StringBuilder out) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof String) {
            quote((String) value, out);
        } else if (value instanceof Map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) value).entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                quote(String.valueOf(e.getKey()), out);
                out.append(':');
                writeTree(e.getValue(), out);
            }
            out.append('}');
        } else if (value instanceof List) {
            out.append('[');
            boolean first = true;
            for (Object item : (List<?>) value) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                writeTree(item, out);
            }
            out.append(']');
        } else if (value instanceof Object[]) {
            out.append('[');
            Object[] items = (Object[]) value;
            for (int i = 0; i < items.length; i++) {
                if (i > 0) {
                    out.append(',');
                }
                writeTree(items[i], out);
            }
            out.append(']');
        } else if (value instanceof Double || value instanceof Float) {
            double d = ((Number) value).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                quote(value.toString(), out);
            } else {
                out.append(value.toString());
            }
        } else if (value instanceof Number || value instanceof Boolean) {
            out.append(value.toString());
        } else {
            quote(value.toString(), out);
        }
    }

    static byte[] treeBytes(Object value) {
        StringBuilder sb = new StringBuilder(128);
        writeTree(value, sb);
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }
}
