package shoal.runtime;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * A Lambda Runtime API (2018-06-01) client speaking HTTP/1.1 by hand over one keep-alive socket: the cheapest
 * thing for a JVM to load (HttpURLConnection and java.net.http pull in far more classes on the cold path).
 */
final class RuntimeClient {
    static final String PREFIX = "/2018-06-01/runtime/";
    private static final String USER_AGENT = "aws-lambda-java/shoal-" + System.getProperty("java.version");

    static final class Response {
        final int status;
        final Map<String, String> headers; // lower-case names
        final byte[] body;

        Response(int status, Map<String, String> headers, byte[] body) {
            this.status = status;
            this.headers = headers;
            this.body = body;
        }

        String header(String name) {
            return headers.get(name);
        }
    }

    static final class ApiException extends IOException {
        private static final long serialVersionUID = 1L;

        ApiException(String message) {
            super(message);
        }
    }

    private final String host;
    private final int port;
    private final byte[] hostHeader;
    private Socket socket;
    private InputStream in;
    private OutputStream out;
    private Thread connecting;
    private IOException connectError;

    RuntimeClient(String address) {
        int colon = address.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("AWS_LAMBDA_RUNTIME_API is not host:port: " + address);
        }
        String h = address.substring(0, colon);
        if (h.startsWith("[") && h.endsWith("]")) {
            h = h.substring(1, h.length() - 1);
        }
        this.host = h;
        this.port = Integer.parseInt(address.substring(colon + 1));
        this.hostHeader = ("Host: " + address + "\r\nUser-Agent: " + USER_AGENT + "\r\n")
                .getBytes(StandardCharsets.ISO_8859_1);
    }

    /**
     * Opens the connection on another thread, so that the JDK's socket set-up (a few ms of class
     * initialisation on a cold JVM) overlaps with loading the handler.
     */
    void connectInBackground() {
        Thread t = new Thread(new Runnable() {
            public void run() {
                try {
                    connect();
                } catch (IOException e) {
                    connectError = e;
                }
            }
        }, "runtime-api-connect");
        t.setDaemon(true);
        connecting = t;
        t.start();
    }

    private void awaitBackgroundConnect() {
        Thread t = connecting;
        if (t == null) {
            return;
        }
        connecting = null;
        boolean interrupted = false;
        while (true) {
            try {
                t.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (connectError != null) {
            connectError = null;
            close(); // exchange() connects again and reports the error if it persists
        }
    }

    Response next() throws IOException {
        return exchange("GET", PREFIX + "invocation/next", null, null, null);
    }

    void postResponse(String requestId, byte[] body, String contentType) throws IOException {
        expectAccepted(exchange("POST", PREFIX + "invocation/" + requestId + "/response", contentType, null, body));
    }

    void postError(String requestId, byte[] body, String errorType) throws IOException {
        expectAccepted(exchange("POST", PREFIX + "invocation/" + requestId + "/error", "application/json",
                errorType, body));
    }

    void postInitError(byte[] body, String errorType) throws IOException {
        expectAccepted(exchange("POST", PREFIX + "init/error", "application/json", errorType, body));
    }

    private static void expectAccepted(Response r) throws ApiException {
        if (r.status != 202) {
            throw new ApiException("the Runtime API answered " + r.status + ": "
                    + new String(r.body, StandardCharsets.UTF_8));
        }
    }

    void close() {
        if (socket != null) {
            try {
                socket.close();
            } catch (IOException e) {
                // closing anyway
            }
            socket = null;
        }
    }

    private Response exchange(String method, String path, String contentType, String errorType, byte[] body)
            throws IOException {
        byte[] request = request(method, path, contentType, errorType, body);
        awaitBackgroundConnect();
        for (int attempt = 0;; attempt++) {
            boolean fresh = socket == null;
            try {
                if (fresh) {
                    connect();
                }
                out.write(request);
                if (body != null && body.length > 0) {
                    out.write(body);
                }
                out.flush();
                return read();
            } catch (IOException e) {
                close();
                if (fresh || attempt > 0) { // a kept-alive connection may have gone stale: one retry
                    throw e;
                }
            }
        }
    }

    private void connect() throws IOException {
        Socket s = new Socket(Proxy.NO_PROXY); // no proxy selector: skips reading net.properties
        try {
            s.setTcpNoDelay(true);
            s.connect(new InetSocketAddress(host, port));
            in = new BufferedInputStream(s.getInputStream(), 16384);
            out = s.getOutputStream();
        } catch (IOException e) {
            s.close();
            throw e;
        }
        socket = s;
    }

    private byte[] request(String method, String path, String contentType, String errorType, byte[] body) {
        StringBuilder sb = new StringBuilder(192);
        sb.append(method).append(' ').append(path).append(" HTTP/1.1\r\n");
        if (body != null) {
            sb.append("Content-Length: ").append(body.length).append("\r\n");
            if (contentType != null) {
                sb.append("Content-Type: ").append(contentType).append("\r\n");
            }
        }
        if (errorType != null) {
            sb.append("Lambda-Runtime-Function-Error-Type: ").append(errorType).append("\r\n");
        }
        byte[] head = sb.toString().getBytes(StandardCharsets.UTF_8);
        byte[] request = new byte[head.length + hostHeader.length + 2];
        System.arraycopy(head, 0, request, 0, head.length);
        System.arraycopy(hostHeader, 0, request, head.length, hostHeader.length);
        request[request.length - 2] = '\r';
        request[request.length - 1] = '\n';
        return request;
    }

    private Response read() throws IOException {
        String status = line();
        if (!status.startsWith("HTTP/1.")) {
            throw new ApiException("not an HTTP response: " + status);
        }
        int code = Integer.parseInt(status.substring(9, 12));
        Map<String, String> headers = new HashMap<>();
        for (String line = line(); !line.isEmpty(); line = line()) {
            int colon = line.indexOf(':');
            if (colon > 0) {
                headers.put(line.substring(0, colon).trim().toLowerCase(), line.substring(colon + 1).trim());
            }
        }
        byte[] body;
        String length = headers.get("content-length");
        if (length != null) {
            body = readFully(Integer.parseInt(length));
        } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            while (true) {
                String size = line();
                int semi = size.indexOf(';');
                int n = Integer.parseInt((semi >= 0 ? size.substring(0, semi) : size).trim(), 16);
                if (n == 0) {
                    while (!line().isEmpty()) {
                        // trailers
                    }
                    break;
                }
                buf.write(readFully(n));
                line();
            }
            body = buf.toByteArray();
        } else {
            body = new byte[0];
        }
        if ("close".equalsIgnoreCase(headers.get("connection"))) {
            close();
        }
        return new Response(code, headers, body);
    }

    private byte[] readFully(int n) throws IOException {
        byte[] b = new byte[n];
        int off = 0;
        while (off < n) {
            int r = in.read(b, off, n - off);
            if (r < 0) {
                throw new EOFException("the Runtime API closed the connection mid-body");
            }
            off += r;
        }
        return b;
    }

    private byte[] lineBuf = new byte[256];

    /** One header line, decoded as UTF-8 (client context JSON may hold non-ASCII text). */
    private String line() throws IOException {
        int len = 0;
        while (true) {
            int c = in.read();
            if (c < 0) {
                throw new EOFException("the Runtime API closed the connection");
            }
            if (c == '\n') {
                if (len > 0 && lineBuf[len - 1] == '\r') {
                    len--;
                }
                return new String(lineBuf, 0, len, StandardCharsets.UTF_8);
            }
            if (len == lineBuf.length) {
                lineBuf = java.util.Arrays.copyOf(lineBuf, len * 2);
            }
            lineBuf[len++] = (byte) c;
        }
    }
}
