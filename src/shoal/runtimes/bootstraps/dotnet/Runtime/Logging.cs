// Function logging as AWS's .NET 6+ runtime does it (Amazon.Lambda.RuntimeSupport's LogLevelLoggerWriter):
//
//   Console.WriteLine(x)                 2024-01-01T00:00:00.000Z<TAB><request id><TAB>info<TAB>x
//   Console.Error.WriteLine(x)           … fail …
//   Console.Write(x), Logger.Log(x)      x, as is
//   context.Logger.LogLine(x)            … info …
//   Logger.LogInformation/LogWarning …   … trce|dbug|info|warn|fail|crit …, below the minimum level dropped
//   LambdaLogger.Log(x)                  2024-01-01T00:00:00.000Z<TAB><request id><TAB>x
//
// AWS_LAMBDA_HANDLER_LOG_FORMAT=Unformatted writes every line as is; AWS_LAMBDA_LOG_FORMAT=JSON writes one
// JSON object per record ({"timestamp","level","requestId","traceId","message"} + errorType/errorMessage/
// stackTrace). The minimum level is AWS_LAMBDA_HANDLER_LOG_LEVEL, else AWS_LAMBDA_LOG_LEVEL, else Information.
//
// AWS writes each record to a telemetry descriptor, so a multi-line record is one log event; the platform
// here splits the output pipe on "\n", so the inner line ends of a formatted record are written as "\r".
using System;
using System.Globalization;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using Amazon.Lambda.Core;
using Amazon.Lambda.Core.Internal;

namespace Shoal.Lambda
{
    internal sealed class LogSink
    {
        internal static LogSink Instance;

        internal readonly TextWriter Out; // the raw process stdout (autoflush)
        internal readonly TextWriter Err; // the raw process stderr (autoflush)
        internal readonly object Lock = new object();
        internal string RequestId = "";
        internal string TraceId;
        private readonly bool _unformatted;
        private readonly bool _json;
        private readonly int _minimum;

        private static readonly string[] Labels = { "trce", "dbug", "info", "warn", "fail", "crit" };
        private static readonly string[] Names = { "Trace", "Debug", "Information", "Warning", "Error", "Critical" };

        internal LogSink()
        {
            var utf8 = new UTF8Encoding(false);
            Out = new StreamWriter(Console.OpenStandardOutput(), utf8, 4096) { AutoFlush = true };
            Err = new StreamWriter(Console.OpenStandardError(), utf8, 4096) { AutoFlush = true };
            _json = string.Equals(Environment.GetEnvironmentVariable("AWS_LAMBDA_LOG_FORMAT"), "JSON", StringComparison.OrdinalIgnoreCase);
            _unformatted = !_json && string.Equals(Environment.GetEnvironmentVariable("AWS_LAMBDA_HANDLER_LOG_FORMAT"), "Unformatted", StringComparison.OrdinalIgnoreCase);
            _minimum = LevelOf(Environment.GetEnvironmentVariable("AWS_LAMBDA_HANDLER_LOG_LEVEL"));
            if (_minimum < 0)
                _minimum = LevelOf(Environment.GetEnvironmentVariable("AWS_LAMBDA_LOG_LEVEL"));
            if (_minimum < 0)
                _minimum = 2;
        }

        /// <summary>The level number of a name (.NET's or Lambda's log level names); -1 when unknown.</summary>
        internal static int LevelOf(string name)
        {
            if (string.IsNullOrEmpty(name))
                return -1;
            // if-chains, not a string switch: mcs compiles the latter to a Dictionary<string, int> (JIT work at start)
            string n = name.Trim().ToLowerInvariant();
            if (n == "information" || n == "info") return 2;
            if (n == "warning" || n == "warn") return 3;
            if (n == "error" || n == "fail") return 4;
            if (n == "debug" || n == "dbug") return 1;
            if (n == "trace" || n == "trce") return 0;
            if (n == "critical" || n == "crit" || n == "fatal") return 5;
            return -1;
        }

        /// <summary>One record. level null: no level label (LambdaLogger.Log); an unknown name is printed as is.</summary>
        internal void Write(TextWriter target, string level, Exception exception, string message, object[] args)
        {
            int number = LevelOf(level);
            if (number >= 0 && number < _minimum)
                return;
            string line = Format(number, level, exception, message, args);
            lock (Lock)
            {
                target.Write(line + "\n");
            }
        }

        /// <summary>Formats a record without writing it: done once during INIT, so that the first invocation
        /// (which runs under the function's CPU limit) does not pay for compiling this path.</summary>
        internal void Prime()
        {
            Format(2, "Information", null, "{0}", new object[] { 1 });
        }

        private string Format(int number, string level, Exception exception, string message, object[] args)
        {
            if (args != null && args.Length > 0)
                message = MessageTemplate.Format(message, args);
            string line;
            if (_json)
            {
                line = Json(number >= 0 ? Names[number] : (level ?? "Information"), exception, message);
            }
            else
            {
                if (exception != null)
                    message = string.IsNullOrEmpty(message) ? Errors.ToText(exception) : message + "\n" + Errors.ToText(exception);
                if (_unformatted)
                {
                    line = message ?? "";
                }
                else
                {
                    var sb = new StringBuilder(64 + (message == null ? 0 : message.Length));
                    sb.Append(Timestamp()).Append('\t').Append(RequestId).Append('\t');
                    string label = number >= 0 ? Labels[number] : level;
                    if (!string.IsNullOrEmpty(label))
                        sb.Append(label).Append('\t');
                    sb.Append(message);
                    line = sb.ToString();
                }
            }
            return line.Replace("\r\n", "\r").Replace('\n', '\r');
        }

        private static string Timestamp()
        {
            return DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        }

        private string Json(string level, Exception exception, string message)
        {
            var sb = new StringBuilder(128);
            sb.Append("{\"timestamp\":");
            JsonEngine.WriteString(sb, Timestamp());
            sb.Append(",\"level\":");
            JsonEngine.WriteString(sb, level);
            if (!string.IsNullOrEmpty(RequestId))
            {
                sb.Append(",\"requestId\":");
                JsonEngine.WriteString(sb, RequestId);
            }
            if (!string.IsNullOrEmpty(TraceId))
            {
                sb.Append(",\"traceId\":");
                JsonEngine.WriteString(sb, TraceId);
            }
            sb.Append(",\"message\":");
            JsonEngine.WriteString(sb, message ?? "");
            if (exception != null)
            {
                sb.Append(",\"errorType\":");
                JsonEngine.WriteString(sb, exception.GetType().FullName);
                sb.Append(",\"errorMessage\":");
                JsonEngine.WriteString(sb, exception.Message);
                sb.Append(",\"stackTrace\":[");
                var lines = Errors.ToText(exception).Split('\n');
                for (int i = 0; i < lines.Length; i++)
                {
                    if (i > 0)
                        sb.Append(',');
                    JsonEngine.WriteString(sb, lines[i].Trim());
                }
                sb.Append(']');
            }
            return sb.Append('}').ToString();
        }
    }

    /// <summary>Console.Out / Console.Error: each WriteLine is a record at the writer's level; Write passes through.</summary>
    internal sealed class ConsoleRecordWriter : TextWriter
    {
        private readonly LogSink _sink;
        private readonly TextWriter _inner;
        private readonly string _level;

        internal ConsoleRecordWriter(LogSink sink, TextWriter inner, string level)
            : base(CultureInfo.InvariantCulture)
        {
            _sink = sink;
            _inner = inner;
            _level = level;
        }

        public override Encoding Encoding { get { return _inner.Encoding; } }

        private void Line(string value)
        {
            _sink.Write(_inner, _level, null, value ?? "", null);
        }

        private string F(IFormattable value)
        {
            return value.ToString(null, FormatProvider);
        }

        public override void Write(char value) { lock (_sink.Lock) _inner.Write(value); }
        public override void Write(string value) { lock (_sink.Lock) _inner.Write(value); }
        public override void Write(char[] buffer, int index, int count) { lock (_sink.Lock) _inner.Write(buffer, index, count); }
        public override void Flush() { _inner.Flush(); }

        public override void WriteLine() { Line(""); }
        public override void WriteLine(string value) { Line(value); }
        public override void WriteLine(object value) { Line(value == null ? "" : value is IFormattable ? F((IFormattable)value) : value.ToString()); }
        public override void WriteLine(bool value) { Line(value ? "True" : "False"); }
        public override void WriteLine(char value) { Line(value.ToString()); }
        public override void WriteLine(char[] buffer) { Line(buffer == null ? "" : new string(buffer)); }
        public override void WriteLine(char[] buffer, int index, int count) { Line(new string(buffer, index, count)); }
        public override void WriteLine(int value) { Line(F(value)); }
        public override void WriteLine(uint value) { Line(F(value)); }
        public override void WriteLine(long value) { Line(F(value)); }
        public override void WriteLine(ulong value) { Line(F(value)); }
        public override void WriteLine(float value) { Line(F(value)); }
        public override void WriteLine(double value) { Line(F(value)); }
        public override void WriteLine(decimal value) { Line(F(value)); }
        public override void WriteLine(string format, object arg0) { Line(string.Format(FormatProvider, format, arg0)); }
        public override void WriteLine(string format, object arg0, object arg1) { Line(string.Format(FormatProvider, format, arg0, arg1)); }
        public override void WriteLine(string format, object arg0, object arg1, object arg2) { Line(string.Format(FormatProvider, format, arg0, arg1, arg2)); }
        public override void WriteLine(string format, params object[] arg) { Line(string.Format(FormatProvider, format, arg)); }
        public override Task WriteLineAsync() { Line(""); return Task.FromResult(0); }
        public override Task WriteLineAsync(string value) { Line(value); return Task.FromResult(0); }
        public override Task WriteLineAsync(char value) { Line(value.ToString()); return Task.FromResult(0); }
        public override Task WriteLineAsync(char[] buffer, int index, int count) { Line(new string(buffer, index, count)); return Task.FromResult(0); }
    }

    /// <summary>context.Logger.</summary>
    internal sealed class ContextLogger : ILambdaLogger, ILeveledLambdaLogger
    {
        internal static readonly ContextLogger Instance = new ContextLogger();

        public void Log(string message)
        {
            Console.Write(message);
        }

        public void LogLine(string message)
        {
            var sink = LogSink.Instance;
            sink.Write(sink.Out, "Information", null, message, null);
        }

        public void Log(string level, Exception exception, string message, object[] args)
        {
            var sink = LogSink.Instance;
            sink.Write(sink.Out, level, exception, message, args);
        }
    }
}
