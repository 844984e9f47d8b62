/**
 * The fault proxy as a process (one per node; inside the node's network namespace when the
 * suite runs with namespaces): `node dist/faults/proxy-main.js <listenHost> <listenPort>
 * <targetHost> <targetPort> <seed>`.
 *
 * Control: one JSON command per line on stdin, answered by `ack <seq>` on stdout:
 *   {"seq":1,"cmd":"policy","from":"n2","cut":true,"delayMs":0,"jitterMs":0,"lossPercent":0}   ("*": every source)
 *   {"seq":2,"cmd":"reset"}
 * It prints `ready <port>` once listening, and exits when stdin closes (the suite ended, or
 * died: the proxy never outlives its controller).
 *
 * Owns: one PeerProxy. Must never: read the environment or write anything but acks to stdout.
 */
import { createInterface } from 'node:readline';
import { Prng } from './prng.js';
import { PeerProxy } from './proxy.js';

const [listenHost, listenPort, targetHost, targetPort, seed] = process.argv.slice(2);
if (listenHost === undefined || listenPort === undefined || targetHost === undefined || targetPort === undefined) {
  console.error('usage: proxy-main <listenHost> <listenPort> <targetHost> <targetPort> [seed]');
  process.exit(2);
}
const prng = new Prng(Number(seed ?? 1));
const proxy = new PeerProxy({ host: targetHost, port: Number(targetPort) }, () => prng.next());
const port = await proxy.listen(listenHost, Number(listenPort));
process.stdout.write(`ready ${port}\n`);

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = JSON.parse(line) as {
    seq: number;
    cmd: 'policy' | 'reset';
    from?: string;
    cut?: boolean;
    delayMs?: number;
    jitterMs?: number;
    lossPercent?: number;
  };
  switch (command.cmd) {
    case 'policy':
      proxy.setPolicy(command.from ?? '*', {
        cut: command.cut ?? false,
        delayMs: command.delayMs ?? 0,
        jitterMs: command.jitterMs ?? 0,
        lossPercent: command.lossPercent ?? 0,
      });
      break;
    case 'reset':
      proxy.reset();
      break;
  }
  process.stdout.write(`ack ${command.seq}\n`);
});
lines.on('close', () => {
  void proxy.close().then(() => process.exit(0));
});
