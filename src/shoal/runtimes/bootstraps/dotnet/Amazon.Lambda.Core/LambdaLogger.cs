using System;

namespace Amazon.Lambda.Core
{
    /// <summary>Static logging for code that has no context at hand. Outside a Lambda runtime it writes to
    /// the console; inside one the runtime redirects it into the function's log.</summary>
    public static class LambdaLogger
    {
        // Replaced by the runtime at start-up (AWS's runtime sets a field of this very name by reflection).
        private static Action<string> _loggingAction = message => Console.WriteLine(message);
        private static Action<string, Exception, string, object[]> _loggingWithLevelAction;

        /// <summary>Writes a message to the function's log.</summary>
        public static void Log(string message)
        {
            _loggingAction(message);
        }

        /// <summary>Writes a message at a log level (Trace, Debug, Information, Warning, Error, Critical).</summary>
        public static void Log(string level, string message, params object[] args)
        {
            Dispatch(level, null, message, args);
        }

        /// <summary>Writes a message and an exception at a log level.</summary>
        public static void Log(string level, Exception exception, string message, params object[] args)
        {
            Dispatch(level, exception, message, args);
        }

        /// <summary>Writes a message at a log level.</summary>
        public static void Log(LogLevel level, string message, params object[] args)
        {
            Dispatch(level.ToString(), null, message, args);
        }

        /// <summary>Writes a message and an exception at a log level.</summary>
        public static void Log(LogLevel level, Exception exception, string message, params object[] args)
        {
            Dispatch(level.ToString(), exception, message, args);
        }

        internal static void Dispatch(string level, Exception exception, string message, object[] args)
        {
            var leveled = _loggingWithLevelAction;
            if (leveled != null)
            {
                leveled(level, exception, message, args);
                return;
            }
            var text = args != null && args.Length > 0 ? MessageTemplate.Format(message, args) : message;
            if (exception != null)
                text = string.IsNullOrEmpty(text) ? exception.ToString() : text + "\n" + exception;
            _loggingAction(text);
        }
    }

    /// <summary>Message templates of the leveled logging methods: "{name}" or "{0}" placeholders filled in
    /// order from the arguments, "{{" and "}}" for braces, ",alignment" and ":format" kept.</summary>
    internal static class MessageTemplate
    {
        internal static string Format(string template, object[] args)
        {
            if (template == null || args == null || args.Length == 0)
                return template;
            var sb = new System.Text.StringBuilder(template.Length + 16);
            int next = 0;
            for (int i = 0; i < template.Length; i++)
            {
                char c = template[i];
                if (c == '{' && i + 1 < template.Length && template[i + 1] == '{')
                {
                    sb.Append('{');
                    i++;
                    continue;
                }
                if (c == '}' && i + 1 < template.Length && template[i + 1] == '}')
                {
                    sb.Append('}');
                    i++;
                    continue;
                }
                int close = c == '{' ? template.IndexOf('}', i + 1) : -1;
                if (close < 0)
                {
                    sb.Append(c);
                    continue;
                }
                string inner = template.Substring(i + 1, close - i - 1);
                int cut = inner.IndexOfAny(new[] { ',', ':' });
                string name = cut < 0 ? inner : inner.Substring(0, cut);
                string spec = cut < 0 ? "" : inner.Substring(cut);
                int index;
                bool positional = int.TryParse(name, System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out index);
                if (!positional)
                    index = next++;
                if (index < args.Length)
                {
                    try
                    {
                        sb.Append(string.Format(System.Globalization.CultureInfo.InvariantCulture,
                            "{0" + spec + "}", args[index]));
                    }
                    catch (FormatException)
                    {
                        sb.Append(Convert.ToString(args[index], System.Globalization.CultureInfo.InvariantCulture));
                    }
                }
                else
                {
                    sb.Append('{').Append(inner).Append('}');
                }
                i = close;
            }
            return sb.ToString();
        }
    }
}
