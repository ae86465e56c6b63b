# frozen_string_literal: true

# `Logger` as AWS's Ruby runtime interface client leaves it: a logger writing to $stdout, $stderr or nil is
# sent to the function's log stream, one log event per record, with the Lambda formatter (text, or JSON when
# the function's LoggingConfig.LogFormat is JSON) and, when it was not given, the level of
# AWS_LAMBDA_LOG_LEVEL. Loaded by an autoload of ::Logger that bootstrap.rb sets, that is on the first use of
# `Logger` or on `require 'logger'`, whichever comes first; the formatter classes are made on first use,
# when `Logger::Formatter` exists whatever the order of loading was.

begin
  verbose = $VERBOSE
  $VERBOSE = nil # `require 'logger'` may be the one in progress: no circular-require warning
  require 'logger'
ensure
  $VERBOSE = verbose
end

module ShoalRuntime
  module LoggerPatch
    # Logger::DEBUG … Logger::FATAL (the constants may not be defined yet when this file loads)
    LOG_LEVELS = { 'TRACE' => 0, 'DEBUG' => 0, 'INFO' => 1, 'WARN' => 2, 'ERROR' => 3, 'FATAL' => 4 }.freeze

    class << self
      attr_reader :log_format, :log_level

      def refresh_runtime_config!
        @log_format = ENV.fetch('AWS_LAMBDA_LOG_FORMAT', '').upcase
        @log_level = LOG_LEVELS[ENV.fetch('AWS_LAMBDA_LOG_LEVEL', nil)&.upcase]
      end

      def json_format?
        @log_format == 'JSON'
      end

      def formatter
        json_format? ? ShoalRuntime.json_log_formatter.new : ShoalRuntime.text_log_formatter.new
      end
    end

    refresh_runtime_config!

    def initialize(logdev, shift_age = 0, shift_size = 1_048_576, **kwargs)
      if !logdev || logdev == $stdout || logdev == $stderr
        logdev = ShoalRuntime::LOG_SINK
        kwargs[:formatter] ||= LoggerPatch.formatter
        kwargs[:level] = LoggerPatch.log_level if !kwargs.key?(:level) && LoggerPatch.log_level
      end
      super(logdev, shift_age, shift_size, **kwargs)
    end
  end

  class << self
    # `I, [2024-01-02T03:04:05.678901 #8]  INFO <request id> -- progname: message`
    def text_log_formatter
      @text_log_formatter ||= const_set(:LogFormatter, Class.new(::Logger::Formatter) do
        const_set(:FORMAT, '%<sev>s, [%<datetime>s #%<process>d] %<severity>5s %<request_id>s -- %<progname>s: %<msg>s')

        def call(severity, time, progname, msg)
          formatted = format(
            self.class::FORMAT,
            sev: severity[0..0], datetime: format_datetime(time), process: $$, severity: severity,
            request_id: $_global_aws_request_id, progname: progname, msg: msg2str(msg)
          )
          "#{formatted.encode('UTF-8', invalid: :replace, undef: :replace, replace: "\uFFFD")}\n"
        end
      end)
    end

    # `{"timestamp":"…Z","level":"INFO","message":"…","requestId":"…","logger":"progname"}`, plus errorType,
    # errorMessage, stackTrace and location when the message is an exception.
    def json_log_formatter
      @json_log_formatter ||= const_set(:JsonLogFormatter, Class.new(::Logger::Formatter) do
        const_set(:DATETIME_FORMAT, '%Y-%m-%dT%H:%M:%S.%6NZ')

        def call(severity, time, progname, msg)
          payload = {
            timestamp: time.utc.strftime(self.class::DATETIME_FORMAT),
            level: severity,
            message: sanitize_utf8(msg.is_a?(Exception) ? msg.message : msg2str(msg)),
            requestId: $_global_aws_request_id
          }
          logger_name = sanitize_utf8(progname) unless progname.nil?
          payload[:logger] = logger_name unless logger_name.nil? || logger_name.empty?
          if msg.is_a?(Exception)
            payload[:errorType] = msg.class.to_s
            payload[:errorMessage] = sanitize_utf8(msg.message)
            payload[:stackTrace] = Array(msg.backtrace).map { |line| sanitize_utf8(line) }
            location = location_for(msg)
            payload[:location] = location unless location.nil?
          end
          "#{JSON.generate(payload.compact)}\n"
        end

        private

        def location_for(exception)
          first = exception.backtrace&.first
          return nil if first.nil?

          line = sanitize_utf8(first)
          matched = line.match(/\A(?<file>.+):(?<line>\d+):in [`'](?<method>.+)'\z/)
          matched ? "#{matched[:file]}:#{matched[:method]}:#{matched[:line]}" : line
        end

        def sanitize_utf8(value)
          value.to_s.encode('UTF-8', invalid: :replace, undef: :replace, replace: "\uFFFD")
        end
      end)
    end
  end
end

class ::Logger # rubocop:disable Style/ClassAndModuleChildren
  prepend ShoalRuntime::LoggerPatch
end
