// Shoal's .NET (Mono) runtime: started by the platform as `mono … /var/runtime/bootstrap.exe` with the working
// directory at the function's code and the environment of a Lambda execution environment. It loads the
// handler (INIT), then answers events from the Runtime API one at a time, like AWS's
// Amazon.Lambda.RuntimeSupport. It depends on mscorlib, Amazon.Lambda.Core and Shoal's
// Amazon.Lambda.Serialization.SystemTextJson only: no System.dll on the cold-start path.
using System;
using System.IO;
using System.Reflection;
using System.Text;
using Amazon.Lambda.Core;
using Amazon.Lambda.Serialization.SystemTextJson;

[assembly: AssemblyTitle("Shoal .NET runtime for Mono")]

namespace Shoal.Lambda
{
    internal static class Bootstrap
    {
        private static string _taskRoot;

        private static int Main(string[] args)
        {
            var sink = LogSink.Instance = new LogSink();
            Console.SetOut(new ConsoleRecordWriter(sink, sink.Out, "Information"));
            Console.SetError(new ConsoleRecordWriter(sink, sink.Err, "Error"));
            RedirectLambdaLogger(sink);

            string api = Environment.GetEnvironmentVariable("AWS_LAMBDA_RUNTIME_API");
            if (string.IsNullOrEmpty(api))
            {
                sink.Err.WriteLine("AWS_LAMBDA_RUNTIME_API is not set: this program runs inside a Lambda execution environment");
                return 2;
            }
            try
            {
                var client = new RuntimeApiClient(api);
                _taskRoot = Environment.GetEnvironmentVariable("LAMBDA_TASK_ROOT") ?? Directory.GetCurrentDirectory();
                AppDomain.CurrentDomain.AssemblyResolve += Resolve;
                Handler handler;
                try
                {
                    handler = Handler.Load(Environment.GetEnvironmentVariable("_HANDLER"), _taskRoot);
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine(Errors.ToText(e));
                    client.PostError(null, null, Encoding.UTF8.GetBytes(Errors.ToJson(e)));
                    return 1;
                }
                Loop(client, handler);
            }
            catch (RuntimeApiException e)
            {
                sink.Err.WriteLine(e.Message); // the platform is gone or refuses: end, as AWS's runtime does
            }
            return 1;
        }

        private static void Loop(RuntimeApiClient client, Handler handler)
        {
            var env = new FunctionEnvironment();
            while (true)
            {
                var next = client.Next();
                var context = new LambdaContext(env, next);
                var sink = LogSink.Instance;
                sink.RequestId = context.AwsRequestId ?? "";
                sink.TraceId = context.TraceId;
                if (context.TraceId != null)
                    Environment.SetEnvironmentVariable("_X_AMZN_TRACE_ID", context.TraceId);
                MemoryStream response;
                try
                {
                    response = handler.Invoke(next.Body, context);
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine(Errors.ToText(e));
                    client.PostError(context.AwsRequestId, e.GetType().Name, Encoding.UTF8.GetBytes(Errors.ToJson(e)));
                    continue;
                }
                client.PostResponse(context.AwsRequestId, response.GetBuffer(), (int)response.Length);
            }
        }

        /// <summary>LambdaLogger.Log into the function's log, as AWS's runtime does (by the same private fields).</summary>
        private static void RedirectLambdaLogger(LogSink sink)
        {
            var type = typeof(LambdaLogger);
            var plain = type.GetField("_loggingAction", BindingFlags.NonPublic | BindingFlags.Static);
            if (plain != null)
                plain.SetValue(null, new Action<string>(message => sink.Write(sink.Out, null, null, message, null)));
            var leveled = type.GetField("_loggingWithLevelAction", BindingFlags.NonPublic | BindingFlags.Static);
            if (leveled != null)
            {
                leveled.SetValue(null, new Action<string, Exception, string, object[]>(
                    (level, exception, message, arguments) => sink.Write(sink.Out, level, exception, message, arguments)));
            }
        }

        /// <summary>The API assemblies are always the runtime's (a package may carry AWS's builds of them);
        /// the function's other dependencies come from beside it, or from /opt (layers).</summary>
        private static Assembly Resolve(object sender, ResolveEventArgs args)
        {
            string name = new AssemblyName(args.Name).Name;
            if (name == "Amazon.Lambda.Core")
                return typeof(ILambdaContext).Assembly;
            if (name == "Amazon.Lambda.Serialization.SystemTextJson")
                return typeof(DefaultLambdaJsonSerializer).Assembly;
            foreach (var dir in new[] { _taskRoot, Path.Combine(_taskRoot, "lib"), "/opt/dotnet", "/opt/lib", "/opt" })
            {
                var path = Path.Combine(dir, name + ".dll");
                if (File.Exists(path))
                    return Assembly.LoadFrom(path);
            }
            return null;
        }
    }
}
