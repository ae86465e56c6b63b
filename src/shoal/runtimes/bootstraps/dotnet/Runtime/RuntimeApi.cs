// A Lambda Runtime API (2018-06-01) client: HTTP/1.1 spoken by hand over one keep-alive TCP connection.
//
// The socket is libc's, reached by P/Invoke: System.Net.Sockets lives in System.dll, which Mono would load
// and JIT on every cold start (~50 ms measured); everything here is in mscorlib (AOT-compiled by Debian).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Shoal.Lambda
{
    internal static class Libc
    {
        internal const int EINTR = 4;

        [DllImport("libc.so.6", SetLastError = true)]
        internal static extern int socket(int domain, int type, int protocol);

        [DllImport("libc.so.6", SetLastError = true)]
        internal static extern int connect(int fd, byte[] address, int length);

        [DllImport("libc.so.6", SetLastError = true)]
        internal static extern unsafe IntPtr read(int fd, byte* buffer, IntPtr count);

        [DllImport("libc.so.6", SetLastError = true)]
        internal static extern unsafe IntPtr write(int fd, byte* buffer, IntPtr count);

        [DllImport("libc.so.6", SetLastError = true)]
        internal static extern int close(int fd);

        [DllImport("libc.so.6", SetLastError = true)]
        internal static extern int setsockopt(int fd, int level, int name, ref int value, int length);
    }

    /// <summary>The Runtime API cannot be reached or refuses a call.</summary>
    internal sealed class RuntimeApiException : Exception
    {
        internal RuntimeApiException(string message) : base(message)
        {
        }
    }

    internal sealed class ApiResponse
    {
        internal int Status;
        internal Dictionary<string, string> Headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        internal byte[] Body;

        internal string Header(string name)
        {
            string value;
            return Headers.TryGetValue(name, out value) ? value : null;
        }
    }

    internal sealed class RuntimeApiClient
    {
        private const string Prefix = "/2018-06-01/runtime/";
        private readonly byte[] _address;
        private readonly int _family;
        private readonly string _host;
        private int _fd = -1;
        private byte[] _buffer = new byte[64 * 1024];
        private int _start, _end;

        internal RuntimeApiClient(string hostPort)
        {
            _host = hostPort;
            int colon = hostPort.LastIndexOf(':');
            if (colon <= 0)
                throw new RuntimeApiException("AWS_LAMBDA_RUNTIME_API is not host:port: " + hostPort);
            string host = hostPort.Substring(0, colon).Trim('[', ']');
            int port = int.Parse(hostPort.Substring(colon + 1), CultureInfo.InvariantCulture);
            if (host == "localhost")
                host = "127.0.0.1";
            if (host.IndexOf(':') >= 0)
            {
                _family = 10; // AF_INET6: sockaddr_in6
                _address = new byte[28];
                _address[0] = 10;
                var ip = ParseIPv6(host);
                Buffer.BlockCopy(ip, 0, _address, 8, 16);
            }
            else
            {
                _family = 2; // AF_INET: sockaddr_in
                _address = new byte[16];
                _address[0] = 2;
                var parts = host.Split('.');
                if (parts.Length != 4)
                    throw new RuntimeApiException("AWS_LAMBDA_RUNTIME_API host is not an IPv4 address: " + host);
                for (int i = 0; i < 4; i++)
                    _address[4 + i] = byte.Parse(parts[i], CultureInfo.InvariantCulture);
            }
            _address[2] = (byte)(port >> 8);
            _address[3] = (byte)port;
        }

        private static byte[] ParseIPv6(string host)
        {
            var result = new byte[16];
            string[] halves = host.Split(new[] { "::" }, StringSplitOptions.None);
            string[] head = halves[0].Length > 0 ? halves[0].Split(':') : new string[0];
            string[] tail = halves.Length > 1 && halves[1].Length > 0 ? halves[1].Split(':') : new string[0];
            for (int i = 0; i < head.Length; i++)
            {
                int v = int.Parse(head[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                result[2 * i] = (byte)(v >> 8);
                result[2 * i + 1] = (byte)v;
            }
            for (int i = 0; i < tail.Length; i++)
            {
                int v = int.Parse(tail[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                int at = 16 - 2 * (tail.Length - i);
                result[at] = (byte)(v >> 8);
                result[at + 1] = (byte)v;
            }
            return result;
        }

        private void Connect()
        {
            _fd = Libc.socket(_family, 1 /* SOCK_STREAM */ | 0x80000 /* SOCK_CLOEXEC */, 0);
            if (_fd < 0)
                throw new RuntimeApiException("socket() failed: errno " + Marshal.GetLastWin32Error());
            int one = 1;
            Libc.setsockopt(_fd, 6 /* IPPROTO_TCP */, 1 /* TCP_NODELAY */, ref one, 4);
            while (Libc.connect(_fd, _address, _address.Length) != 0)
            {
                int errno = Marshal.GetLastWin32Error();
                if (errno == Libc.EINTR)
                    continue;
                Libc.close(_fd);
                _fd = -1;
                throw new RuntimeApiException("cannot connect to the Runtime API at " + _host + ": errno " + errno);
            }
            _start = _end = 0;
        }

        private void Disconnect()
        {
            if (_fd >= 0)
                Libc.close(_fd);
            _fd = -1;
        }

        private unsafe void WriteAll(byte[] data, int count)
        {
            fixed (byte* p = data)
            {
                int offset = 0;
                while (offset < count)
                {
                    long n = (long)Libc.write(_fd, p + offset, (IntPtr)(count - offset));
                    if (n < 0)
                    {
                        int errno = Marshal.GetLastWin32Error();
                        if (errno == Libc.EINTR)
                            continue;
                        throw new RuntimeApiException("write to the Runtime API failed: errno " + errno);
                    }
                    offset += (int)n;
                }
            }
        }

        private unsafe bool Fill()
        {
            if (_start == _end)
                _start = _end = 0;
            if (_end == _buffer.Length)
            {
                if (_start > 0)
                {
                    Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                    _end -= _start;
                    _start = 0;
                }
                else
                {
                    Array.Resize(ref _buffer, _buffer.Length * 2);
                }
            }
            fixed (byte* p = _buffer)
            {
                while (true)
                {
                    long n = (long)Libc.read(_fd, p + _end, (IntPtr)(_buffer.Length - _end));
                    if (n < 0 && Marshal.GetLastWin32Error() == Libc.EINTR)
                        continue;
                    if (n <= 0)
                        return false;
                    _end += (int)n;
                    return true;
                }
            }
        }

        private string ReadLine()
        {
            while (true)
            {
                for (int i = _start; i + 1 < _end; i++)
                {
                    if (_buffer[i] == '\r' && _buffer[i + 1] == '\n')
                    {
                        string line = Encoding.UTF8.GetString(_buffer, _start, i - _start);
                        _start = i + 2;
                        return line;
                    }
                }
                if (!Fill())
                    throw new RuntimeApiException("the Runtime API closed the connection");
            }
        }

        private byte[] ReadBody(int length)
        {
            var body = new byte[length];
            int have = 0;
            while (have < length)
            {
                if (_start == _end && !Fill())
                    throw new RuntimeApiException("the Runtime API closed the connection mid-body");
                int take = Math.Min(length - have, _end - _start);
                Buffer.BlockCopy(_buffer, _start, body, have, take);
                _start += take;
                have += take;
            }
            return body;
        }

        private ApiResponse Exchange(string method, string path, string[] headers, byte[] body, int bodyLength)
        {
            var sb = new StringBuilder(256);
            sb.Append(method).Append(' ').Append(Prefix).Append(path).Append(" HTTP/1.1\r\nHost: ").Append(_host)
                .Append("\r\nUser-Agent: aws-lambda-dotnet/shoal-mono\r\n");
            if (headers != null)
            {
                for (int i = 0; i + 1 < headers.Length; i += 2)
                {
                    if (headers[i + 1] != null)
                        sb.Append(headers[i]).Append(": ").Append(headers[i + 1]).Append("\r\n");
                }
            }
            if (body != null)
                sb.Append("Content-Type: application/json\r\nContent-Length: ").Append(bodyLength).Append("\r\n");
            sb.Append("\r\n");
            byte[] head = Encoding.UTF8.GetBytes(sb.ToString());
            for (int attempt = 0; ; attempt++)
            {
                if (_fd < 0)
                    Connect();
                try
                {
                    if (body != null && head.Length + bodyLength <= 16384)
                    {
                        var all = new byte[head.Length + bodyLength];
                        Buffer.BlockCopy(head, 0, all, 0, head.Length);
                        Buffer.BlockCopy(body, 0, all, head.Length, bodyLength);
                        WriteAll(all, all.Length);
                    }
                    else
                    {
                        WriteAll(head, head.Length);
                        if (body != null)
                            WriteAll(body, bodyLength);
                    }
                    return ReadResponse();
                }
                catch (RuntimeApiException)
                {
                    Disconnect();
                    if (attempt > 0)
                        throw;
                }
            }
        }

        private ApiResponse ReadResponse()
        {
            var response = new ApiResponse();
            string status = ReadLine();
            var parts = status.Split(' ');
            if (parts.Length < 2 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out response.Status))
                throw new RuntimeApiException("bad status line from the Runtime API: " + status);
            int length = 0;
            bool chunked = false, close = false;
            while (true)
            {
                string line = ReadLine();
                if (line.Length == 0)
                    break;
                int colon = line.IndexOf(':');
                if (colon <= 0)
                    continue;
                string name = line.Substring(0, colon).Trim();
                string value = line.Substring(colon + 1).Trim();
                response.Headers[name] = value;
                if (string.Equals(name, "Content-Length", StringComparison.OrdinalIgnoreCase))
                    length = int.Parse(value, CultureInfo.InvariantCulture);
                else if (string.Equals(name, "Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
                    chunked = value.IndexOf("chunked", StringComparison.OrdinalIgnoreCase) >= 0;
                else if (string.Equals(name, "Connection", StringComparison.OrdinalIgnoreCase))
                    close = string.Equals(value, "close", StringComparison.OrdinalIgnoreCase);
            }
            if (chunked)
            {
                var all = new List<byte>();
                while (true)
                {
                    string size = ReadLine();
                    int semi = size.IndexOf(';');
                    int n = int.Parse(semi < 0 ? size : size.Substring(0, semi), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    if (n == 0)
                    {
                        while (ReadLine().Length > 0)
                        {
                        }
                        break;
                    }
                    all.AddRange(ReadBody(n));
                    ReadLine();
                }
                response.Body = all.ToArray();
            }
            else
            {
                response.Body = ReadBody(length);
            }
            if (close)
                Disconnect();
            return response;
        }

        internal ApiResponse Next()
        {
            while (true)
            {
                var response = Exchange("GET", "invocation/next", null, null, 0);
                if (response.Status == 200)
                    return response;
                throw new RuntimeApiException("the Runtime API answered /next with HTTP " + response.Status
                    + ": " + Encoding.UTF8.GetString(response.Body));
            }
        }

        internal void PostResponse(string requestId, byte[] body, int length)
        {
            var r = Exchange("POST", "invocation/" + requestId + "/response", null, body, length);
            if (r.Status >= 400 && r.Status != 413)
                Console.Error.WriteLine("Runtime API rejected the response: HTTP " + r.Status + " " + Encoding.UTF8.GetString(r.Body));
        }

        internal void PostError(string requestId, string errorType, byte[] body)
        {
            string path = requestId == null ? "init/error" : "invocation/" + requestId + "/error";
            Exchange("POST", path, new[] { "Lambda-Runtime-Function-Error-Type", errorType }, body, body.Length);
        }
    }
}
