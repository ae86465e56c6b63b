package shoal.train;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Training handler: raw bytes in and out. */
public class StreamHandler implements RequestStreamHandler {
    public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
        byte[] bytes = input.readAllBytes();
        output.write(("{\"length\":" + bytes.length + "}").getBytes(StandardCharsets.UTF_8));
    }
}
