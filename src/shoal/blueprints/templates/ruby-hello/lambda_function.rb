# Hello world in Ruby. Invoke it with {"name": "Shoal"}.
require 'json'

def lambda_handler(event:, context:)
  name = (event.is_a?(Hash) && event['name']) || 'world'
  # Whatever the function prints goes to its log stream: `shoal logs FUNCTION` shows it.
  puts JSON.generate({ level: 'INFO', message: 'greeting', name: name })
  {
    message: "Hello, #{name}!",
    requestId: context.aws_request_id,
    runtime: ENV.fetch('AWS_EXECUTION_ENV', '')
  }
end
