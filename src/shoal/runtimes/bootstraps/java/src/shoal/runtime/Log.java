package shoal.runtime;

import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UnsupportedEncodingException;
import java.nio.charset.StandardCharsets;

/**
 * The function's log output. The platform reads one pipe and makes each line a log event, so a
 * {@link LambdaLogger} call (one event on AWS, however many lines it has) is written as one line whose inner
 * newlines are carriage returns. {@code System.out} and {@code System.err} lines are raw log lines.
 */
final class Log {
    private Log() {
    }

    static volatile String requestId;
    static volatile String tenantId;
    private static boolean json;
    private static LogLevel minimum = LogLevel.UNDEFINED;
    private static final OutputStream SINK = new FileOutputStream(FileDescriptor.out);
    private static boolean streamsInstalled;

    static void configure(String format, String level) {
        json = format != null && format.equalsIgnoreCase("JSON");
        minimum = LogLevel.UNDEFINED;
        if (level != null && !level.isEmpty()) {
            try {
                minimum = LogLevel.fromString(level);
            } catch (IllegalArgumentException e) {
                minimum = LogLevel.UNDEFINED;
            }
        }
    }

    static boolean json() {
        return json;
    }

    /** UTF-8 {@code System.out}/{@code System.err}, flushed at every line (and before every result post). */
    static void installStreams() {
        if (streamsInstalled) {
            return;
        }
        streamsInstalled = true;
        try {
            System.setOut(new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 8192),
                    true, "UTF-8"));
            System.setErr(new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.err), 8192),
                    true, "UTF-8"));
        } catch (UnsupportedEncodingException e) {
            throw new AssertionError(e);
        }
        // System.exit() from a handler: what it printed without a newline still reaches the log
        Runtime.getRuntime().addShutdownHook(new Thread(new Runnable() {
            public void run() {
                flush();
            }
        }, "flush-output"));
    }

    static void flush() {
        System.out.flush();
        System.err.flush();
    }

    /** Writes one log event. */
    static void event(byte[] message) {
        int end = message.length;
        while (end > 0 && (message[end - 1] == '\n' || message[end - 1] == '\r')) {
            end--;
        }
        byte[] line = new byte[end + 1];
        for (int i = 0; i < end; i++) {
            byte b = message[i];
            line[i] = b == '\n' ? (byte) '\r' : b;
        }
        line[end] = '\n';
        synchronized (SINK) {
            try {
                SINK.write(line);
            } catch (IOException e) {
                // standard output is gone (the function closed it): nothing left to log to
            }
        }
    }

    static void event(String message) {
        event((message == null ? "null" : message).getBytes(StandardCharsets.UTF_8));
    }

    /** An unhandled error or fault, as AWS's runtime logs it (level ERROR in JSON format). */
    static void error(String message) {
        if (json) {
            event(jsonRecord(message, LogLevel.ERROR));
        } else {
            event(message);
        }
    }

    static String jsonRecord(String message, LogLevel level) {
        StringBuilder sb = new StringBuilder(96 + message.length());
        sb.append("{\"timestamp\":\"");
        timestamp(System.currentTimeMillis(), sb);
        sb.append("\",\"message\":");
        Json.quote(message, sb);
        sb.append(",\"level\":\"").append(level.name()).append('"');
        String rid = requestId;
        if (rid != null) {
            sb.append(",\"AWSRequestId\":");
            Json.quote(rid, sb);
        }
        String tid = tenantId;
        if (tid != null) {
            sb.append(",\"tenantId\":");
            Json.quote(tid, sb);
        }
        return sb.append('}').toString();
    }

    /** yyyy-MM-ddTHH:mm:ss.SSSZ in UTC, without loading java.time on the cold path. */
    static void timestamp(long millis, StringBuilder sb) {
        long days = Math.floorDiv(millis, 86400000L);
        long ms = Math.floorMod(millis, 86400000L);
        long z = days + 719468;
        long era = Math.floorDiv(z, 146097);
        long doe = z - era * 146097;
        long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        long y = yoe + era * 400;
        long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        long mp = (5 * doy + 2) / 153;
        long d = doy - (153 * mp + 2) / 5 + 1;
        long m = mp < 10 ? mp + 3 : mp - 9;
        if (m <= 2) {
            y++;
        }
        sb.append(y).append('-');
        pad(m, 2, sb);
        sb.append('-');
        pad(d, 2, sb);
        sb.append('T');
        pad(ms / 3600000, 2, sb);
        sb.append(':');
        pad(ms / 60000 % 60, 2, sb);
        sb.append(':');
        pad(ms / 1000 % 60, 2, sb);
        sb.append('.');
        pad(ms % 1000, 3, sb);
        sb.append('Z');
    }

    private static void pad(long v, int width, StringBuilder sb) {
        String s = Long.toString(v);
        for (int i = s.length(); i < width; i++) {
            sb.append('0');
        }
        sb.append(s);
    }

    /** The logger of {@code Context.getLogger()} and {@code LambdaRuntime.getLogger()}. */
    static final class ContextLogger implements LambdaLogger {
        public void log(String message) {
            log(message, LogLevel.UNDEFINED);
        }

        public void log(byte[] message) {
            log(message, LogLevel.UNDEFINED);
        }

        public void log(String message, LogLevel level) {
            if (!enabled(level)) {
                return;
            }
            if (message == null) {
                message = "null";
            }
            if (json) {
                event(jsonRecord(message, level == null ? LogLevel.UNDEFINED : level));
            } else if (level == null || level == LogLevel.UNDEFINED) {
                event(message);
            } else {
                event("[" + level.name() + "] " + message);
            }
        }

        public void log(byte[] message, LogLevel level) {
            if (enabled(level)) {
                event(message == null ? "null".getBytes(StandardCharsets.UTF_8) : message);
            }
        }

        private static boolean enabled(LogLevel level) {
            return level == null || level == LogLevel.UNDEFINED || level.ordinal() >= minimum.ordinal();
        }
    }
}
