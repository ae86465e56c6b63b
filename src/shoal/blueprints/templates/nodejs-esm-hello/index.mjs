// Hello world in Node.js, as an ES module (.mjs): `import` works, and so does top-level `await`, which
// runs once per execution environment, during INIT, before the first event. Invoke it with {"name": "Shoal"}.
import { setTimeout as sleep } from 'node:timers/promises';

async function loadConfig() {
  await sleep(1); // stands for reading a secret or a configuration file once
  return { greeting: process.env.GREETING || 'Hello' };
}

const config = await loadConfig();

export const handler = async (event, context) => {
  const name = (event && typeof event === 'object' && event.name) || 'world';
  console.log(JSON.stringify({ level: 'INFO', message: 'greeting', name }));
  return {
    message: `${config.greeting}, ${name}!`,
    requestId: context.awsRequestId,
    runtime: process.env.AWS_EXECUTION_ENV || '',
    module: 'esm',
  };
};
