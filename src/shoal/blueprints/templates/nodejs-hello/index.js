// Hello world in Node.js, as a CommonJS module. Invoke it with {"name": "Shoal"}.
'use strict';

exports.handler = async (event, context) => {
  const name = (event && typeof event === 'object' && event.name) || 'world';
  // console output goes to the function's log stream: `shoal logs FUNCTION` shows it.
  console.log(JSON.stringify({ level: 'INFO', message: 'greeting', name }));
  return {
    message: `Hello, ${name}!`,
    requestId: context.awsRequestId,
    runtime: process.env.AWS_EXECUTION_ENV || '',
    module: 'commonjs',
  };
};
