from shoal.logs import format as fmt


def test_report_line_exact():
    line = fmt.report("rid", 15.741, 128, 56, init_ms=130.49)
    assert line == ("REPORT RequestId: rid\tDuration: 15.74 ms\tBilled Duration: 147 ms\tMemory Size: 128 MB\t"
                    "Max Memory Used: 56 MB\tInit Duration: 130.49 ms\t")


def test_report_warm_has_no_init_and_bills_ceil():
    line = fmt.report("rid", 0.42, 128, 12)
    assert "Init Duration" not in line
    assert "Billed Duration: 1 ms" in line
    assert line.endswith("Max Memory Used: 12 MB\t")


def test_report_status_suffixes():
    assert fmt.report("r", 1000, 128, 20, status="timeout").endswith("\tStatus: timeout")
    assert fmt.report("r", 1, 128, 20, status="error", error_type="Runtime.OutOfMemory").endswith(
        "Max Memory Used: 20 MB\tStatus: error\tError Type: Runtime.OutOfMemory")


def test_start_end_init_lines():
    assert fmt.start("r", "$LATEST") == "START RequestId: r Version: $LATEST"
    assert fmt.end("r") == "END RequestId: r"
    assert fmt.init_report(10007.333, "init", "timeout") == "INIT_REPORT Init Duration: 10007.33 ms\tPhase: init\tStatus: timeout"
    assert fmt.init_start("python:3.12.v1", "arn:x") == "INIT_START Runtime Version: python:3.12.v1\tRuntime Version ARN: arn:x"


def test_timeout_and_exit_lines():
    assert fmt.timed_out(0.0, "r", 3) == "1970-01-01T00:00:00.000Z r Task timed out after 3.00 seconds"
    assert fmt.exit_reason(1) == "exit status 1"
    assert fmt.exit_reason(-9) == "signal: killed"
    assert fmt.runtime_exited("r", "signal: killed") == "RequestId: r Error: Runtime exited with error: signal: killed"


def test_billed_is_never_below_one_and_includes_init():
    assert fmt.billed_ms(0.0, None) == 1
    assert fmt.billed_ms(1.0, None) == 1
    assert fmt.billed_ms(1.001, None) == 2
    assert fmt.billed_ms(1.5, 2.5) == 4


def test_platform_error_types_follow_the_runtime_api_rule():
    assert fmt.platform_error_type("Runtime.ImportModuleError") == "Runtime.ImportModuleError"
    assert fmt.platform_error_type("Function.ResponseSizeTooLarge") == "Function.ResponseSizeTooLarge"
    assert fmt.platform_error_type("Function.bad") == "Function.Unknown"
    assert fmt.platform_error_type("Init<LoadError>") == "Runtime.Unknown"
    assert fmt.platform_error_type("KeyError") == "Runtime.Unknown"
