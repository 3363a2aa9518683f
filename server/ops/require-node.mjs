// Every npm script runs this first. npm ci installs Node 26 from the npm
// registry (the "node" package) and npm puts it first on the scripts' PATH;
// with install scripts off (ignore-scripts) the system's Node runs instead,
// and an older one fails later in ways that do not say why. Plain JavaScript,
// so that any Node can run it; silent when the version is right.
const major = Number(process.versions.node.split(".")[0]);
if (major < 26) {
  console.error(`grpc-chat: the npm scripts need Node.js 26 and found ${process.version}: run npm ci with install scripts on (it installs Node 26, the node package)`);
  process.exit(1);
}
