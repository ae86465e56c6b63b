# frozen_string_literal: true

# Shoal's Ruby language bootstrap: a Lambda Runtime API (2018-06-01) client.
#
# Started by the platform as `ruby --disable-gems bootstrap.rb` inside the sandbox, with the working directory
# set to the function's code and the reserved environment variables of a Lambda execution environment. It
# behaves like AWS's Ruby runtime interface client (the `aws_lambda_ric` gem): same handler forms
# (`file.method`, `file.Module::Class.method`, called with `event:` and `context:`), error shapes
# (`Function<Class>`, `Init<Class>`), context object, `puts` and `Logger` behaviour, exit codes.
#
# It imports nothing from `shoal` and is on the cold-start path, so it keeps its own start-up lean:
# - RubyGems is not loaded at start (`--disable-gems` saves ~45 ms): it is loaded on first need, that is the
#   first `require` that the plain load path cannot satisfy, the first use of `Gem` or of `Kernel#gem`; gems
#   then resolve through GEM_PATH exactly as they would have;
# - HTTP/1.1 is spoken by hand over one keep-alive TCP socket (`net/http` costs ~45 ms to load);
# - what AWS's client loads before user code and a function may therefore use without `require` (`JSON`,
#   `Logger`, `Net::HTTP`, `URI`, `StringIO`, `Timeout`) is there: JSON eagerly (its `to_json` methods must
#   exist), the others as autoloads.
#
# Log framing: on AWS every `puts` call and every `Logger` record is one log event (the client writes them to
# a framed telemetry pipe). The platform here splits the output pipe into events on "\n" only, so such a
# record is written as one line whose inner newlines are replaced with "\r". `print`, `p`, `$stdout.write`
# and `$stderr` output stay raw, as on AWS.

require 'socket.so'
require 'json'

module ShoalRuntime
  API_PREFIX = '/2018-06-01/runtime'
  DEFAULT_ADDRESS = '127.0.0.1:9001'
  RUNTIME_PREFIX = "#{__dir__}/"
  # X-Ray error causes above this size are not sent (AWS's client stops at 1 MiB, HTTP servers at less)
  XRAY_CAUSE_MAX = 32 * 1024
  XRAY_MAX_DEPTH = 15
  MAX_STACK = 100
  F_DUPFD_CLOEXEC = 1030
  # error classes whose `Function<…>`/`Init<…>` type AWS's client passes in Lambda-Runtime-Function-Error-Type
  ALLOWED_ERROR_CLASSES = %w[
    ArgumentError NoMethodError Exception StandardError NameError LoadError SystemExit SystemStackError
  ].freeze
  INVALID_HANDLER = 'must be of form FILENAME.METHOD or FILENAME.CLASS.METHOD where FILENAME corresponds ' \
                    'with an existing Ruby source file FILENAME.rb, CLASS is an optional module/class ' \
                    'namespace and METHOD is a callable method. If using CLASS, METHOD must be a ' \
                    'class-level method.'

  class InvocationError < StandardError; end

  # ----------------------------------------------------------------------------------------------------------
  # Log events

  @log_io = nil

  class << self
    attr_reader :log_io

    # One log event: a trailing newline is dropped, inner newlines become "\r", one "\n" ends it.
    def log_event(message)
      data = message.to_s.b
      data = data.byteslice(0, data.bytesize - 1) if data.end_with?("\n")
      data = data.tr("\n", "\r") if data.include?("\n")
      data << "\n"
      io = @log_io || $stdout
      io.write(data)
    rescue StandardError
      nil
    end

    def setup_output
      $stdout.sync = true
      # a private duplicate of fd 1: logs survive a handler that reassigns $stdout or closes STDOUT
      @log_io = STDOUT.dup
      @log_io.binmode
      @log_io.sync = true
    rescue StandardError
      @log_io = nil
    end

    def flush_output
      [$stdout, $stderr, STDOUT, STDERR].each do |io|
        io.flush
      rescue StandardError
        nil
      end
    end

    def stderr_line(text)
      STDERR.write("#{text}\n")
    rescue StandardError
      nil
    end
  end

  # The log device behind `Logger.new($stdout)` and friends (AWS's TelemetryLogSink): one write, one event.
  class LogSink
    def write(*messages)
      ShoalRuntime.log_event(messages.join)
    end

    def close; end

    def reopen(_log = nil)
      self
    end
  end
  LOG_SINK = LogSink.new

  # ----------------------------------------------------------------------------------------------------------
  # RubyGems on first need

  @gems_loaded = false

  class << self
    attr_reader :gems_loaded

    def load_rubygems
      return false if @gems_loaded

      @gems_loaded = true
      __shoal_require('rubygems')
      true
    end

    # Bundler and RubyGems' own files expect RubyGems to be loaded first.
    def needs_rubygems?(path)
      !@gems_loaded && path.is_a?(String) && path.start_with?('rubygems', 'bundler')
    end
  end

  # ----------------------------------------------------------------------------------------------------------
  # Errors (AWS's LambdaErrors::LambdaError)

  class LambdaError
    attr_reader :error_type, :runtime_error_type, :response, :locations

    def initialize(exception, classification)
      klass = exception.class.to_s
      @error_type = "#{classification}<#{klass}>"
      @runtime_error_type = ALLOWED_ERROR_CLASSES.include?(klass) ? @error_type : 'Function<UserException>'
      @locations = ShoalRuntime.user_locations(exception)
      @response = {
        errorMessage: ShoalRuntime.text(ShoalRuntime.message_of(exception)),
        errorType: @error_type,
        stackTrace: @locations.map { |location| ShoalRuntime.text(location.to_s) }
      }
    end

    def to_json(*args)
      @response.to_json(*args)
    end

    def xray_cause
      stack = @locations.first(XRAY_MAX_DEPTH).map do |location|
        { path: location.path, line: location.lineno, label: location.label }
      end
      JSON.dump(
        working_directory: Dir.pwd,
        paths: ShoalRuntime.gem_paths,
        exceptions: [{ message: @response[:errorMessage], type: @error_type, stack: stack }]
      )
    rescue StandardError
      nil
    end
  end

  class << self
    def message_of(exception)
      exception.message
    rescue StandardError
      ''
    end

    def text(value)
      string = value.to_s
      return string if string.encoding == Encoding::UTF_8 && string.valid_encoding?

      string.dup.force_encoding(Encoding::UTF_8).scrub
    end

    # The exception's frames as AWS's client reports them (at most 100, up to the first frame whose path is
    # relative under `lib`), without the frames of this runtime.
    def user_locations(exception)
      found = []
      (exception.backtrace_locations || []).first(MAX_STACK).each do |location|
        break if location.to_s.start_with?('lib')

        path = location.absolute_path || location.path
        found << location unless path&.start_with?(RUNTIME_PREFIX)
      end
      found
    rescue StandardError
      []
    end

    def gem_paths
      (ENV['GEM_PATH'] || '').split(':').reject(&:empty?)
    end

    def log_error(error, message)
      log_event(message)
      log_event(JSON.pretty_generate(error.response))
    end
  end

  # ----------------------------------------------------------------------------------------------------------
  # Runtime API client: HTTP/1.1 over one persistent connection

  class Client
    def initialize(address)
      @address = address
      host, sep, port = address.rpartition(':')
      host, port = address, '80' if sep.empty? || !port.match?(/\A\d+\z/)
      host = host[1..-2] if host.start_with?('[') && host.end_with?(']')
      @host = host
      @port = port.to_i
      @sock = nil
      @buf = String.new(encoding: Encoding::BINARY)
      @chunk = String.new(encoding: Encoding::BINARY)
      @reused = false
      @got_bytes = false
      @user_agent = "aws-lambda-ruby/#{RUBY_VERSION}-shoal"
    end

    def close
      @sock&.close
    rescue StandardError
      nil
    ensure
      @sock = nil
      @buf.clear
    end

    def next_invocation
      status, headers, body = request('GET', "#{API_PREFIX}/invocation/next")
      raise InvocationError, "Received #{status} when waiting for next invocation." unless status.between?(200, 299)

      [headers, body]
    end

    def post_response(request_id, body, content_type)
      request('POST', "#{API_PREFIX}/invocation/#{request_id}/response", body,
              [['Content-Type', content_type]])
    end

    def post_error(request_id, error)
      request('POST', "#{API_PREFIX}/invocation/#{request_id}/error", error.to_json, error_headers(error))
    end

    def post_init_error(error)
      request('POST', "#{API_PREFIX}/init/error", error.to_json, error_headers(error, xray: false))
    end

    private

    def error_headers(error, xray: true)
      headers = [['Content-Type', 'application/json'], ['Lambda-Runtime-Function-Error-Type', error.runtime_error_type]]
      if xray
        cause = error.xray_cause
        headers << ['Lambda-Runtime-Function-XRay-Error-Cause', cause] if cause && cause.bytesize < XRAY_CAUSE_MAX
      end
      headers
    end

    def connect
      sock = TCPSocket.new(@host, @port)
      begin
        sock.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
      rescue StandardError
        nil
      end
      if sock.fileno <= 2
        # a handler closed STDOUT/STDERR: never hand our connection its fd number
        high = TCPSocket.for_fd(sock.fcntl(F_DUPFD_CLOEXEC, 3))
        sock.close
        sock = high
      end
      sock.sync = true
      @sock = sock
      @buf.clear
      @reused = false
    end

    # True when the server closed the idle keep-alive connection (or sent something unasked).
    def peer_closed?
      @sock.read_nonblock(1, @chunk, exception: false) != :wait_readable
    rescue StandardError
      true
    end

    def request(method, path, body = nil, headers = nil)
      head = +"#{method} #{path} HTTP/1.1\r\nHost: #{@address}\r\nUser-Agent: #{@user_agent}\r\n"
      head << "Content-Length: #{body.bytesize}\r\n" if body
      headers&.each { |name, value| head << "#{name}: #{value.to_s.tr("\r\n", '  ')}\r\n" }
      head << "\r\n"
      data = head.b
      if body && body.bytesize <= 65_536
        data << body.b
        body = nil
      end
      attempt = 0
      loop do
        attempt += 1
        close if @sock && @reused && peer_closed?
        connect unless @sock
        reused = @reused
        @got_bytes = false
        begin
          @sock.write(data)
          @sock.write(body) if body
          response = read_response
        rescue SystemCallError, IOError
          close
          # a keep-alive connection may die under us: retry once if the server never answered
          next if attempt == 1 && reused && !@got_bytes

          raise
        end
        @reused = true
        return response
      end
    end

    def fill
      @sock.readpartial(262_144, @chunk)
      @got_bytes = true
      @buf << @chunk
    rescue EOFError
      raise Errno::ECONNRESET, 'Runtime API closed the connection'
    end

    def read_exact(size)
      fill while @buf.bytesize < size
      @buf.slice!(0, size)
    end

    def read_line
      until (index = @buf.index("\r\n"))
        fill
      end
      line = @buf.slice!(0, index)
      @buf.slice!(0, 2)
      line
    end

    def read_response
      status = nil
      lines = nil
      loop do
        until (index = @buf.index("\r\n\r\n"))
          fill
        end
        lines = @buf.slice!(0, index + 4).split("\r\n")
        parts = lines.first.to_s.split(' ', 3)
        raise Errno::ECONNRESET, "malformed response from Runtime API: #{lines.first.inspect}" \
          unless parts[1]&.match?(/\A\d{3}\z/)

        status = parts[1].to_i
        break unless status.between?(100, 199) # interim responses are skipped
      end
      headers = {}
      lines.drop(1).each do |line|
        name, value = line.split(':', 2)
        headers[name.strip.downcase] = value.strip if value
      end
      body = read_body(headers)
      connection = headers['connection'].to_s.downcase
      close if connection.include?('close') || (lines.first.start_with?('HTTP/1.0') && !connection.include?('keep-alive'))
      [status, headers, body]
    end

    def read_body(headers)
      if headers['transfer-encoding'].to_s.downcase.include?('chunked')
        body = String.new(encoding: Encoding::BINARY)
        loop do
          size = read_line.split(';', 2).first.to_i(16)
          break if size.zero?

          body << read_exact(size)
          read_line
        end
        read_line until read_line.empty? # trailers
        body
      elsif headers.key?('content-length')
        read_exact(headers['content-length'].to_i)
      else
        begin
          fill while true
        rescue Errno::ECONNRESET
          nil
        end
        body = @buf.dup
        close
        body
      end
    end
  end

  # The `/next` response as AWS's client hands it to `AwsLambda::Marshaller.marshall_request` and
  # `LambdaContext.new` (a `Net::HTTPResponse` there): case-insensitive `[]` and `body`.
  class RawRequest
    attr_reader :body

    def initialize(headers, body)
      @headers = headers
      @body = body
    end

    def [](name)
      @headers[name.to_s.downcase]
    end

    def key?(name)
      @headers.key?(name.to_s.downcase)
    end

    def to_hash
      @headers.transform_values { |value| [value] }
    end

    def each_header(&block)
      @headers.each(&block)
    end
  end

  # ----------------------------------------------------------------------------------------------------------
  # The invocation loop (AWS's LambdaRunner)

  class Runner
    def initialize(client, handler_string)
      @client = client
      @handler_string = handler_string
    end

    def run
      app_root = Dir.pwd
      $LOAD_PATH.unshift(app_root) unless $LOAD_PATH.include?(app_root)
      begin
        @handler = LambdaHandler.new(env_handler: @handler_string)
        require @handler.handler_file_name
      rescue Exception => e # rubocop:disable Lint/RescueException -- LoadError, SyntaxError, anything at load
        init_error(e)
      end
      loop { invoke_once }
    end

    private

    def init_error(exception)
      error = LambdaError.new(exception, 'Init')
      # AWS's client interpolates an instance variable it never sets here, hence the trailing space
      ShoalRuntime.log_error(error, 'Init error when loading handler ')
      ShoalRuntime.flush_output
      begin
        @client.post_init_error(error)
      rescue StandardError => e
        ShoalRuntime.stderr_line("Failed to report the init error to the Runtime API: #{e.message}")
      end
      exit(-4)
    end

    def next_invocation
      @client.next_invocation
    rescue SignalException => e
      ShoalRuntime.log_event('Next invocation HTTP request from the runtime interface client was interrupted ' \
                             "with a #{e} SIGNAL, gracefully shutting down.")
      exit(0)
    rescue StandardError => e
      ShoalRuntime.stderr_line("LAMBDA_RUNTIME Failed to get next invocation: #{e.message}")
      ShoalRuntime.flush_output
      exit(-4)
    end

    def invoke_once
      headers, body = next_invocation
      request_id = headers['lambda-runtime-aws-request-id'].to_s
      $_global_aws_request_id = request_id
      trace_id = headers['lambda-runtime-trace-id']
      ENV['_X_AMZN_TRACE_ID'] = trace_id if trace_id
      raw = RawRequest.new(headers, body)

      exit_code = nil
      begin
        request = AwsLambda::Marshaller.marshall_request(raw)
        context = LambdaContext.new(raw)
      rescue StandardError => e
        error = LambdaError.new(e, 'Function') # an event or header that does not parse
        ShoalRuntime.log_error(error, 'Error raised from handler method')
      end
      if error.nil?
        begin
          response, content_type = @handler.call_handler(request: request, context: context)
        rescue NoMethodError, NameError => e
          # AWS's client fails hard on these: the runtime exits after reporting (the next invoke re-inits)
          error = LambdaError.new(e, 'Function')
          exit_code = -1
          ShoalRuntime.log_error(error, 'Critical exception from handler')
        rescue StandardError => e
          error = LambdaError.new(e, 'Function')
          ShoalRuntime.log_error(error, 'Error raised from handler method')
        rescue Exception => e # rubocop:disable Lint/RescueException -- exit, stack overflow, signals: fatal
          error = LambdaError.new(e, 'Function')
          exit_code = -1
          ShoalRuntime.log_error(error, 'Critical exception from handler')
        end
      end

      ShoalRuntime.flush_output
      begin
        if error
          @client.post_error(request_id, error)
        else
          response = response.read if content_type == 'application/unknown'
          @client.post_response(request_id, response.to_s, content_type || 'application/json')
        end
      rescue StandardError => e
        ShoalRuntime.stderr_line("LAMBDA_RUNTIME Failed to post the invocation result: #{e.message}")
        ShoalRuntime.flush_output
        exit(-2)
      end
      exit(exit_code) if exit_code
    end
  end

  def self.main
    address = ENV['AWS_LAMBDA_RUNTIME_API']
    if address.nil?
      log_event('Failed to get runtime server address from AWS_LAMBDA_RUNTIME_API env variable')
      exit(-2)
    end
    handler = ENV['_HANDLER']
    if handler.nil?
      log_event('No handler specified, exiting Runtime Interface Client.')
      exit(0)
    end
    Runner.new(Client.new(address), handler).run
  end
end

# ------------------------------------------------------------------------------------------------------------
# Public names AWS's client defines and functions may use

# Handler resolution: `file.method` or `file.Module::Class.method` (AWS's LambdaHandler). A top-level handler
# method runs with an instance of this class as `self`, as on AWS.
class LambdaHandler
  attr_reader :handler_file_name, :handler_method_name

  def initialize(env_handler:)
    handler_split = env_handler.split('.')
    if handler_split.size == 2
      @handler_file_name, @handler_method_name = handler_split
    elsif handler_split.size == 3
      @handler_file_name, @handler_class, @handler_method_name = handler_split
    else
      raise ArgumentError, "Invalid handler #{handler_split}, #{ShoalRuntime::INVALID_HANDLER}"
    end
  end

  def call_handler(request:, context:)
    response = if @handler_class
                 Kernel.const_get(@handler_class).send(@handler_method_name, event: request, context: context)
               else
                 __send__(@handler_method_name, event: request, context: context)
               end
    # serialisation is part of user code (a failing `to_json` is the function's error)
    AwsLambda::Marshaller.marshall_response(response)
  end
end

# The context object (AWS's LambdaContext).
class LambdaContext
  W3C_ALLOWED_FIELDS = %w[traceparent tracestate baggage].freeze

  attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name, :function_name,
              :memory_limit_in_mb, :function_version, :identity, :tenant_id, :client_context, :deadline_ms

  def initialize(request)
    @clock_diff = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond) -
                  Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond)
    @deadline_ms = request['Lambda-Runtime-Deadline-Ms'].to_i
    @aws_request_id = request['Lambda-Runtime-Aws-Request-Id']
    @invoked_function_arn = request['Lambda-Runtime-Invoked-Function-Arn']
    @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
    @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
    @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
    @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']
    @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
    identity = request['Lambda-Runtime-Cognito-Identity']
    @identity = JSON.parse(identity) unless identity.to_s.empty?
    tenant_id = request['Lambda-Runtime-Aws-Tenant-Id']
    @tenant_id = tenant_id unless tenant_id.to_s.empty?
    @w3c_fields = {}
    client_context = request['Lambda-Runtime-Client-Context']
    return if client_context.to_s.empty?

    @client_context = JSON.parse(client_context)
    @w3c_fields = self.class.extract_and_strip_w3c(@client_context)
  end

  def get_remaining_time_in_millis # rubocop:disable Naming/AccessorMethodName -- AWS's name
    now = Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond) + @clock_diff
    remaining = @deadline_ms - now
    remaining.positive? ? remaining : 0
  end

  def w3c
    @w3c_fields.dup
  end

  def self.extract_and_strip_w3c(client_context)
    return {} unless client_context.is_a?(Hash) && client_context.key?('w3c')

    raw = client_context.delete('w3c')
    return {} unless raw.is_a?(Hash)

    W3C_ALLOWED_FIELDS.each_with_object({}) do |key, fields|
      fields[key] = raw[key] if raw[key].is_a?(String)
    end
  end
end

# Request and response (de)serialisation; functions may redefine these, as on AWS.
module AwsLambda
  class Marshaller
    class << self
      # JSON-parses the event when it is JSON; any other payload is handed over as it came.
      def marshall_request(raw_request)
        if raw_request['Content-Type'] == 'application/json'
          JSON.parse(raw_request.body)
        else
          raw_request.body
        end
      end

      # `to_json` of the handler's value; an IO or StringIO is streamed as is, as `application/unknown`.
      def marshall_response(method_response)
        if method_response.is_a?(IO) ||
           (!Object.autoload?(:StringIO) && defined?(::StringIO) && method_response.is_a?(::StringIO))
          [method_response, 'application/unknown']
        else
          method_response.to_json
        end
      end
    end
  end
end

# What AWS's client has loaded before user code runs, on first use.
Object.autoload(:Gem, 'rubygems')
Object.autoload(:Logger, File.join(__dir__, 'logger_patch.rb'))
Object.autoload(:StringIO, 'stringio')
Object.autoload(:URI, 'uri')
Object.autoload(:Timeout, 'timeout')
Object.autoload(:Set, 'set') # Ruby 3.2 and later have Set without a require
module Net
  autoload :HTTP, 'net/http'
end

# `require` of a gem and `gem` load RubyGems the first time the plain load path cannot satisfy them.
module Kernel
  alias_method :__shoal_require, :require

  def require(path)
    ShoalRuntime.load_rubygems if ShoalRuntime.needs_rubygems?(path)
    __shoal_require(path)
  rescue LoadError
    raise unless ShoalRuntime.load_rubygems

    require(path)
  end
  private :require

  # RubyGems and uri replace these two stand-ins when they load; the aliases keep Ruby from warning (-w)
  # about the redefinition.
  def gem(*args, **kwargs)
    ShoalRuntime.load_rubygems
    gem(*args, **kwargs)
  end
  alias_method :__shoal_gem, :gem
  private :gem, :__shoal_gem

  # `URI("…")` works on AWS without a require (net/http has loaded uri there)
  def URI(uri) # rubocop:disable Naming/MethodName
    require 'uri'
    URI(uri)
  end
  alias_method :__shoal_uri, :URI
  private :URI, :__shoal_uri

  # On AWS `puts` writes one log event per call (a framed telemetry record), whatever $stdout is.
  remove_method :puts
  def puts(*args)
    ShoalRuntime.log_event(args.flatten.map(&:to_s).join("\n"))
    nil
  end
  private :puts
end

if $PROGRAM_NAME == __FILE__
  ShoalRuntime.setup_output
  ShoalRuntime.main
end
