package shoal.runtime;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * A fault in the function's set-up (bad handler, class not found, constructor failure …), reported the way
 * AWS's Java runtime reports it: {@code errorMessage} and {@code errorType} (the exception class) only.
 * A fatal fault ends the environment; a non-fatal one is answered to every invocation.
 */
final class UserFault extends RuntimeException {
    private static final long serialVersionUID = 1L;
    static final String PACKAGE_PREFIX = "shoal.runtime.";

    final String msg;
    final String exception;
    final String trace;
    final boolean fatal;

    UserFault(String msg, String exception, String trace, boolean fatal) {
        super(msg, null, false, false);
        this.msg = msg;
        this.exception = exception;
        this.trace = trace;
        this.fatal = fatal;
    }

    static UserFault of(String msg) {
        return new UserFault(msg, null, null, false);
    }

    static UserFault of(Throwable t, boolean fatal) {
        String msg = t.getLocalizedMessage() == null ? t.getClass().getName() : t.getLocalizedMessage();
        return new UserFault(msg, t.getClass().getName(), trace(t), fatal);
    }

    static UserFault initError(Throwable e, String className) {
        return new UserFault("Error loading class " + className + (e.getMessage() == null ? "" : ": " + e.getMessage()),
                e.getClass().getName(), trace(e), true);
    }

    static UserFault classNotFound(Throwable e, String className) {
        return new UserFault("Class not found: " + className, e.getClass().getName(), trace(e), false);
    }

    /** The log event AWS's runtime writes for a fault or an unhandled exception. */
    String reportable() {
        if (exception != null || trace != null) {
            return msg + ": " + (exception == null ? "" : exception) + "\n" + (trace == null ? "" : trace) + "\n";
        }
        return msg + "\n";
    }

    byte[] body() {
        StringBuilder sb = new StringBuilder(64 + msg.length());
        sb.append("{\"errorMessage\":");
        Json.quote(msg, sb);
        if (exception != null) {
            sb.append(",\"errorType\":");
            Json.quote(exception, sb);
        }
        return sb.append('}').toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    static String trace(Throwable t) {
        filter(t);
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }

    /** Cuts every stack trace (causes and suppressed too) at the first frame of this runtime. */
    static <T extends Throwable> T filter(T t) {
        filter(t, new IdentityHashMap<>());
        return t;
    }

    private static void filter(Throwable t, Map<Throwable, Boolean> seen) {
        if (t == null || seen.put(t, Boolean.TRUE) != null) {
            return;
        }
        StackTraceElement[] trace = t.getStackTrace();
        for (int i = 0; i < trace.length; i++) {
            if (trace[i].getClassName().startsWith(PACKAGE_PREFIX)) {
                StackTraceElement[] cut = new StackTraceElement[i];
                System.arraycopy(trace, 0, cut, 0, i);
                t.setStackTrace(cut);
                break;
            }
        }
        filter(t.getCause(), seen);
        for (Throwable s : t.getSuppressed()) {
            filter(s, seen);
        }
    }

    /** An unhandled exception as the invoke error body: errorMessage, errorType, stackTrace (+ cause). */
    static byte[] errorBody(Throwable t) {
        StringBuilder sb = new StringBuilder(512);
        errorJson(t, sb, new IdentityHashMap<>(), 0);
        return sb.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    private static void errorJson(Throwable t, StringBuilder sb, Map<Throwable, Boolean> seen, int depth) {
        String msg = t.getLocalizedMessage() == null ? t.getClass().getName() : t.getLocalizedMessage();
        sb.append("{\"errorMessage\":");
        Json.quote(msg, sb);
        sb.append(",\"errorType\":");
        Json.quote(t.getClass().getName(), sb);
        sb.append(",\"stackTrace\":[");
        StackTraceElement[] trace = t.getStackTrace();
        for (int i = 0; i < trace.length; i++) {
            if (i > 0) {
                sb.append(',');
            }
            Json.quote(trace[i].toString(), sb);
        }
        sb.append(']');
        seen.put(t, Boolean.TRUE);
        Throwable cause = t.getCause();
        if (cause != null && !seen.containsKey(cause) && depth < 16) {
            sb.append(",\"cause\":");
            errorJson(cause, sb, seen, depth + 1);
        }
        sb.append('}');
    }

    static String reportable(Throwable t) {
        String msg = t.getLocalizedMessage() == null ? t.getClass().getName() : t.getLocalizedMessage();
        return new UserFault(msg, t.getClass().getName(), trace(t), false).reportable();
    }
}
