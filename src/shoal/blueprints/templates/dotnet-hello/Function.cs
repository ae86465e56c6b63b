using System.Text.Json;
using System.Text.Json.Nodes;
using Amazon.Lambda.Core;

namespace HelloWorld;

/// <summary>Hello world in C#. Invoke it with {"name": "Shoal"}.</summary>
/// <remarks>
/// The handler takes the raw event as a Stream and returns the result as one, so it needs only
/// Amazon.Lambda.Core (for ILambdaContext) and no LambdaSerializer attribute. To work with typed events,
/// add Amazon.Lambda.Serialization.SystemTextJson and
/// [assembly: LambdaSerializer(typeof(Amazon.Lambda.Serialization.SystemTextJson.DefaultLambdaJsonSerializer))].
/// </remarks>
public class Function
{
    public Stream FunctionHandler(Stream input, ILambdaContext context)
    {
        JsonNode? evt = null;
        try
        {
            evt = JsonNode.Parse(input);
        }
        catch (JsonException)
        {
            // not JSON: greet the world
        }
        string? given = evt is JsonObject obj && obj["name"] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        string name = string.IsNullOrEmpty(given) ? "world" : given;
        context.Logger.LogLine(JsonSerializer.Serialize(new { level = "INFO", message = "greeting", name }));

        var result = new JsonObject
        {
            ["message"] = $"Hello, {name}!",
            ["requestId"] = context.AwsRequestId,
            ["runtime"] = Environment.GetEnvironmentVariable("AWS_EXECUTION_ENV") ?? "",
        };
        var output = new MemoryStream();
        using (var writer = new Utf8JsonWriter(output))
        {
            result.WriteTo(writer);
        }
        output.Position = 0;
        return output;
    }
}
