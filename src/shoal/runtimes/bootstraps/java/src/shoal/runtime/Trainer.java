package shoal.runtime;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * The training run behind the class-data sharing archive: run with {@code -XX:ArchiveClassesAtExit}, it
 * drives the real runtime loop against an in-process Runtime API with typical handlers (POJO, Map, stream,
 * errors, faults), so that every JDK and runtime class a cold start needs is archived. Never used by functions.
 */
public final class Trainer {
    private Trainer() {
    }

    private static final String[] EVENT = {"{\"name\":\"shoal\",\"count\":3,\"ratio\":0.5,\"tags\":[\"a\",\"b\"],"
            + "\"nested\":{\"flag\":true,\"items\":[{\"id\":1},{\"id\":2}]},\"when\":\"2024-01-02T03:04:05Z\"}"};

    public static void main(String[] args) throws Exception {
        String taskRoot = args[0];
        try (ServerSocket server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress())) {
            Api api = new Api(server);
            Thread t = new Thread(api, "trainer-api");
            t.setDaemon(true);
            t.start();
            String address = "127.0.0.1:" + server.getLocalPort();
            String[][] scenarios = {
                {"shoal.train.PojoHandler::handle", EVENT[0], "{\"name\":[1]}", "{\"name\":\"boom\"}", "not json"},
                {"shoal.train.PojoHandler::text", "\"hello\""},
                {"shoal.train.MapHandler", EVENT[0], "[1,2,3]"},
                {"shoal.train.StreamHandler", EVENT[0], "{}"},
                {"shoal.train.PojoHandler::nothing", "{}"},
                {"shoal.train.PojoHandler::missing", "{}"},
                {"shoal.train.Nope", "{}"},
                {"shoal.train.PojoHandler::handle", EVENT[0]},
                {"shoal.train.Plain::handleRequest", EVENT[0]},
            };
            for (String[] s : scenarios) {
                for (int i = 1; i < s.length; i++) {
                    api.events.add(s[i]);
                }
                Config cfg = Config.fromEnvironment(System.getenv());
                cfg.runtimeApi = address;
                cfg.handler = s[0];
                cfg.taskRoot = taskRoot;
                cfg.functionName = "trainer";
                cfg.functionVersion = "$LATEST";
                cfg.logGroup = "/aws/lambda/trainer";
                cfg.logStream = "2024/01/01/[$LATEST]trainer";
                cfg.training = true;
                cfg.logFormat = s[0].endsWith("Handler") ? "JSON" : "TEXT";
                Bootstrap.run(cfg);
                api.events.clear();
            }
        }
        Log.flush();
        System.exit(0);
    }

    /** A minimal Runtime API: /next hands out queued events, then 418 (the trainer's "stop"). */
    private static final class Api implements Runnable {
        final Deque<String> events = new ArrayDeque<>();
        private final ServerSocket server;
        private int counter;

        Api(ServerSocket server) {
            this.server = server;
        }

        public void run() {
            while (true) {
                try (Socket s = server.accept()) {
                    serve(s);
                } catch (IOException e) {
                    if (server.isClosed()) {
                        return;
                    }
                }
            }
        }

        private void serve(Socket s) throws IOException {
            InputStream in = new BufferedInputStream(s.getInputStream());
            OutputStream out = s.getOutputStream();
            while (true) {
                String requestLine = line(in);
                if (requestLine == null) {
                    return;
                }
                int length = 0;
                for (String h = line(in); h != null && !h.isEmpty(); h = line(in)) {
                    if (h.toLowerCase().startsWith("content-length:")) {
                        length = Integer.parseInt(h.substring(15).trim());
                    }
                }
                for (int i = 0; i < length; i++) {
                    in.read();
                }
                String response;
                if (requestLine.startsWith("GET ")) {
                    String event = events.poll();
                    if (event == null) {
                        response = "HTTP/1.1 418 Done\r\nContent-Length: 0\r\n\r\n";
                    } else {
                        byte[] body = event.getBytes(StandardCharsets.UTF_8);
                        counter++;
                        response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                + "Lambda-Runtime-Aws-Request-Id: 00000000-0000-0000-0000-" + (100000000000L + counter)
                                + "\r\nLambda-Runtime-Deadline-Ms: " + (System.currentTimeMillis() + 60000)
                                + "\r\nLambda-Runtime-Invoked-Function-Arn: "
                                + "arn:aws:lambda:us-east-1:123456789012:function:trainer"
                                + "\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0"
                                + (counter % 2 == 0 ? "\r\nLambda-Runtime-Client-Context: {\"client\":{\"app_title\":"
                                        + "\"t\"},\"custom\":{\"k\":\"v\"},\"env\":{\"platform\":\"Android\"}}"
                                        + "\r\nLambda-Runtime-Cognito-Identity: {\"cognitoIdentityId\":\"i\","
                                        + "\"cognitoIdentityPoolId\":\"p\"}" : "")
                                + "\r\nContent-Length: " + body.length + "\r\n\r\n" + event;
                    }
                } else {
                    response = "HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}";
                }
                out.write(response.getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
        }

        private static String line(InputStream in) throws IOException {
            StringBuilder sb = new StringBuilder();
            while (true) {
                int c = in.read();
                if (c < 0) {
                    return sb.length() == 0 ? null : sb.toString();
                }
                if (c == '\n') {
                    int n = sb.length();
                    if (n > 0 && sb.charAt(n - 1) == '\r') {
                        sb.setLength(n - 1);
                    }
                    return sb.toString();
                }
                sb.append((char) c);
            }
        }
    }
}
