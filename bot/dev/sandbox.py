"""A sandbox target like the runbook's: a git repository of a Node.js backend.

History: a known-good commit, then "Phase 1–3" commits that break it (the health endpoint answers
500). A `.env` with canary secrets, tenant data on a real MongoDB-protocol server (a local nx-27017
from ``bot.dev.localmongo``, or a MongoDB), and both pm2 apps under the sandbox's own PM2_HOME.
Used by the tests, the benchmarks, `rollback-bot sandbox` and `rollback-bot local`.

Two sizes of backend (``SandboxSize``): by default (the tests') plain JavaScript whose `yarn build` copies
``src/`` to ``dist/`` in a few milliseconds; or TypeScript built by the real compiler (`tsc`, the `typescript`
pinned in ``.tools/package.json``), with a real ``yarn.lock`` and ``modules`` generated source modules that
set how long the build takes. Its `yarn install` never uses the network: the sandbox's own yarn settings
(``DIR/.yarnrc``, beside the repository, as a server's ``~/.yarnrc`` would be) install offline from the
registry's tarball that `make deps` keeps in ``.tools/yarn-offline-mirror``.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import git

SERVER_GOOD = """\
const http = require('http');
const fs = require('fs');
const path = require('path');
require('./env');
const port = Number(process.env.PORT || 3000);
const token = process.env.HEALTH_BEARER_TOKEN || '';
const handlers = {
  '/api/health': (req, res) => send(res, 200, { status: 'ok' }),
  '/api/internship': (req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { error: 'unauthorized' });
    send(res, 200, [{ id: 'int-1', title: 'Clinical internship' }]);
  },
};
function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
http.createServer((req, res) => (handlers[req.url.split('?')[0]] || ((q, r) => send(r, 404, {})))(req, res))
  .listen(port, '127.0.0.1', () => console.log(`backend listening on ${port}`));
"""

ENV_LOADER = """\
const fs = require('fs');
const path = require('path');
const file = path.join(__dirname, '..', '.env');
if (fs.existsSync(file)) {
  for (const line of fs.readFileSync(file, 'utf8').split('\\n')) {
    const m = line.match(/^\\s*([A-Z0-9_]+)\\s*=\\s*(.*)\\s*$/);
    if (m && !(m[1] in process.env)) process.env[m[1]] = m[2].replace(/^['"]|['"]$/g, '');
  }
}
"""

BUILD = """\
const fs = require('fs');
const path = require('path');
const out = path.join(__dirname, 'dist');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
for (const f of fs.readdirSync(path.join(__dirname, 'src'))) {
  fs.copyFileSync(path.join(__dirname, 'src', f), path.join(out, f));
}
console.log('built dist/');
"""

PHASES = [
    ("Phase 1.1: Add attempt tracking schema", "src/attempts.js",
     "module.exports = { fields: ['step', 'case_type', 'patient_base_id'] };\n"),
    ("Phase 1.2: Add migration script", "src/migrate.js", "module.exports = () => 'migrated';\n"),
    ("Phase 2: Comprehensive assessment service", "src/assessment.js",
     "module.exports = { generate: () => { throw new Error('assessment generation failed'); } };\n"),
]

# Phase 3 breaks health while the realtime-tips feature is on (the runbook's feature-flag alternative).
SERVER_BROKEN_PATCH = ("'/api/health': (req, res) => send(res, 200, { status: 'ok' }),",
                       "'/api/health': (req, res) => { if (process.env.ENABLE_REALTIME_TIPS === 'false') "
                       "return send(res, 200, { status: 'ok' }); "
                       "console.error('Error: assessment generation failed'); "
                       "send(res, 500, { status: 'error', error: 'assessment service failed' }); },")


AI_SERVER = """\
// Stand-in for the runbook's Python AI server: stays up and answers on its own port.
require('http').createServer((req, res) => res.end('{"status":"ok"}')).listen(0, '127.0.0.1');
console.log('ai server up');
"""

# ---- the TypeScript backend (SandboxSize.typescript) --------------------------------------------------------------
@dataclass(frozen=True)
class SandboxSize:
    """How big a backend to make. The default is the tests': JavaScript, `yarn build` copies files.

    ``typescript``: the backend in TypeScript, `yarn build` is `tsc` (installed by `yarn install` from the
    lock file, offline); ``modules``: generated source modules (each a typed service and its route), which set
    how long `tsc` takes: about 1.5 s of start-up plus 15 ms a module on a 2-core machine."""

    typescript: bool = False
    modules: int = 0

    def __post_init__(self) -> None:
        if self.modules < 0 or (self.modules and not self.typescript):
            raise ValueError("modules: a count of 0 or more, for the TypeScript backend only")


TINY = SandboxSize()
QUICK = SandboxSize(typescript=True, modules=150)  # `yarn build` a few seconds: the benchmarks' quick tier
BENCH = SandboxSize(typescript=True, modules=1500)  # `yarn build` some 9–12 s: the benchmarks' size

TOOLS = Path(__file__).resolve().parents[2] / ".tools"
OFFLINE_MIRROR = TOOLS / "yarn-offline-mirror"

TS_DECLARATIONS = """\
// The little of Node.js this backend uses (no @types/node: one dependency, installed offline).
declare const process: { env: Record<string, string | undefined> };
declare const __dirname: string;
declare const console: { log(...args: unknown[]): void; error(...args: unknown[]): void };
declare function require(name: string): any;
"""

TS_SERVER_GOOD = """\
import './env';
import { routes } from './modules';

const http = require('http');
const port = Number(process.env.PORT || 3000);
const token = process.env.HEALTH_BEARER_TOKEN || '';

interface Request { url: string; headers: Record<string, string | undefined> }
interface Response { writeHead(status: number, headers: Record<string, string>): void; end(body: string): void }
type Handler = (req: Request, res: Response) => void;

const handlers: Record<string, Handler> = {
  '/api/health': (req, res) => send(res, 200, { status: 'ok' }),
  '/api/internship': (req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { error: 'unauthorized' });
    send(res, 200, [{ id: 'int-1', title: 'Clinical internship' }]);
  },
};

function send(res: Response, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

http.createServer((req: Request, res: Response) => {
  const path = req.url.split('?')[0];
  const handler = handlers[path];
  if (handler) return handler(req, res);
  const route = routes.get(path);
  return route ? send(res, 200, route()) : send(res, 404, {});
}).listen(port, '127.0.0.1', () => console.log(`backend listening on ${port}`));
"""

TS_ENV_LOADER = """\
const fs = require('fs');
const path = require('path');
const file = path.join(__dirname, '..', '.env');
if (fs.existsSync(file)) {
  for (const line of (fs.readFileSync(file, 'utf8') as string).split('\\n')) {
    const m = line.match(/^\\s*([A-Z0-9_]+)\\s*=\\s*(.*)\\s*$/);
    if (m && !(m[1] in process.env)) process.env[m[1]] = m[2].replace(/^['"]|['"]$/g, '');
  }
}
export {};
"""

TS_CORE = """\
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export interface Page<T> { items: T[]; index: number; pages: number }

export function paginate<T>(items: T[], size: number, index: number): Page<T> {
  return { items: items.slice(size * index, size * (index + 1)), index, pages: Math.ceil(items.length / size) };
}

export class Registry {
  readonly routes = new Map<string, () => Json>();

  add(path: string, handler: () => Json): void {
    this.routes.set(path, handler);
  }
}
"""

TS_MODULE = """\
import {{ Registry, Json, Page, paginate }} from '../core';

export interface Case{i} {{
  readonly id: string;
  title: string;
  step: number;
  tags: readonly string[];
  scores: Record<string, number>;
  owner?: {{ id: string; role: 'student' | 'tutor' | 'admin' }};
}}

export type Case{i}Patch = Partial<Omit<Case{i}, 'id'>>;
type Case{i}NumberKey = {{ [K in keyof Case{i}]-?: Case{i}[K] extends number ? K : never }}[keyof Case{i}];

export class Case{i}Service<T extends Case{i} = Case{i}> {{
  private readonly items = new Map<string, T>();

  add(item: T): T {{
    this.items.set(item.id, item);
    return item;
  }}

  patch(id: string, patch: Case{i}Patch): T | undefined {{
    const item = this.items.get(id);
    if (!item) return undefined;
    const next = {{ ...item, ...patch }} as T;
    this.items.set(id, next);
    return next;
  }}

  total(key: Case{i}NumberKey): number {{
    return [...this.items.values()].reduce((sum, item: Case{i}) => sum + item[key], 0);
  }}

  byTag(tag: string): T[] {{
    return [...this.items.values()].filter((item) => item.tags.includes(tag));
  }}

  page(size: number, index: number): Page<T> {{
    return paginate([...this.items.values()].sort((a, b) => a.title.localeCompare(b.title)), size, index);
  }}

  summary(): Json {{
    const scores = [...this.items.values()].flatMap((item) => Object.values(item.scores));
    return {{ module: {i}, count: this.items.size, steps: this.total('step'),
             best: scores.length ? Math.max(...scores) : null }};
  }}
}}

export function register{i}(registry: Registry): void {{
  const service = new Case{i}Service();
  service.add({{ id: 'case-{i}', title: 'Case {i}', step: {i}, tags: ['m{i}'], scores: {{ first: {i} }} }});
  registry.add('/api/modules/{i}', () => service.summary());
}}
"""

TS_CONFIG = {"compilerOptions": {"target": "ES2022", "module": "commonjs", "lib": ["ES2022"], "types": [],
                                 "strict": True, "rootDir": "src", "outDir": "dist", "sourceMap": True},
             "include": ["src"]}


def _typescript_tree(modules: int) -> dict[str, str]:
    """The backend's first commit in TypeScript: package.json (typescript pinned), yarn.lock, tsconfig, sources."""
    lock = _typescript_lock()
    package = {"name": "ai-professor-backend", "version": "1.0.0", "private": True,
               "scripts": {"build": "tsc -p tsconfig.json", "start": "node dist/server.js"},
               "devDependencies": {"typescript": lock["version"]}}
    imports = "".join(f"import {{ register{i} }} from './m{i:04d}';\n" for i in range(modules))
    calls = "".join(f"register{i}(registry);\n" for i in range(modules))
    index = ("import { Registry } from '../core';\n" + imports + "\nconst registry = new Registry();\n" + calls
             + "export const routes = registry.routes;\n")
    return {
        "package.json": json.dumps(package, indent=2) + "\n",
        "yarn.lock": ("# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.\n# yarn lockfile v1\n\n\n"
                      f"typescript@{lock['version']}:\n  version \"{lock['version']}\"\n"
                      f"  resolved \"https://registry.yarnpkg.com/typescript/-/typescript-{lock['version']}.tgz\"\n"
                      f"  integrity {lock['integrity']}\n"),
        "tsconfig.json": json.dumps(TS_CONFIG, indent=2) + "\n",
        ".gitignore": "node_modules/\ndist/\n.env\n.yarn-cache/\n",
        "src/node.d.ts": TS_DECLARATIONS, "src/server.ts": TS_SERVER_GOOD, "src/env.ts": TS_ENV_LOADER,
        "src/core.ts": TS_CORE, "src/modules/index.ts": index,
        **{f"src/modules/m{i:04d}.ts": TS_MODULE.format(i=i) for i in range(modules)},
    }


def _typescript_lock() -> dict[str, str]:
    """The version and integrity of the typescript that `make deps` installed and keeps in the offline mirror."""
    try:
        locked = json.loads((TOOLS / "package-lock.json").read_text(encoding="utf-8"))["packages"]
        entry = locked["node_modules/typescript"]
    except (OSError, KeyError, ValueError):
        raise RuntimeError("the TypeScript sandbox needs typescript in .tools/package-lock.json") from None
    if not (OFFLINE_MIRROR / f"typescript-{entry['version']}.tgz").exists():
        raise RuntimeError(f"the TypeScript sandbox installs offline from {OFFLINE_MIRROR}, which has no "
                           f"typescript-{entry['version']}.tgz: run `make deps`")
    return {"version": str(entry["version"]), "integrity": str(entry["integrity"])}


def _ts(name: str) -> str:
    return name[:-3] + ".ts" if name.endswith(".js") else name


def _ts_source(content: str) -> str:
    """A Phase commit's `module.exports = X;` as TypeScript."""
    return content.replace("module.exports = ", "export const value = ")


TENANTS = [("Alpha School", "alpha"), ("Beta Academy", "beta"), ("Gamma Institute", "gamma")]
DELETED_TENANT = ("Old School", "old")


@dataclass(frozen=True)
class Sandbox:
    root: Path
    repo: Path
    good_commit: str
    broken_commit: str
    canaries: dict[str, str]
    port: int = 3000
    central_uri: str = ""
    tenant_dbs: tuple[str, ...] = ()
    pm2_home: Path | None = None
    apps: tuple[str, ...] = ("ai-professor-backend-5000", "ai-professor-python")
    mongo_dir: Path | None = None  # the folder of the sandbox's own local MongoDB, when it has one
    typescript: bool = False  # the TypeScript backend (`yarn build` is tsc; yarn installs offline)
    modules: int = 0

    @property
    def mongo_port(self) -> int | None:
        return urlsplit(self.central_uri).port

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/health"

    def save(self) -> None:
        data = {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}
        (self.root / "sandbox.json").write_text(json.dumps(data, indent=2), encoding="utf-8")

    @classmethod
    def find(cls, root: Path) -> Sandbox | None:
        """The sandbox made in ``root``, if there is one."""
        return cls.load(root) if (Path(root) / "sandbox.json").exists() else None

    @classmethod
    def load(cls, root: Path) -> Sandbox:
        data = json.loads((Path(root) / "sandbox.json").read_text(encoding="utf-8"))
        for key in ("root", "repo", "pm2_home", "mongo_dir"):
            data[key] = Path(data[key]) if data.get(key) else None
        data["tenant_dbs"], data["apps"] = tuple(data["tenant_dbs"]), tuple(data["apps"])
        return cls(**data)

    def config(self) -> dict[str, object]:
        """The rollback.yml sections that point the bot at this sandbox."""
        return {
            "target": {"repo_path": str(self.repo), "rollback_target": self.good_commit[:7]},
            "pm2": {"apps": list(self.apps), "home": str(self.pm2_home) if self.pm2_home else None,
                    "restart_timeout_s": 20},
            "health": {"url": self.health_url, "timeout_s": 8, "settle_s": 5},  # its app starts in under 1 s
            # its backups are a few MB: a 64 MiB reserve still refuses a backup into a nearly full disk, without
            # refusing every one on a small machine (the product's default is 1 GiB)
            "backup": {"reserve_mb": 64},
        }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _commit(repo: git.Repo, message: str, files: dict[str, str]) -> str:
    for name, content in files.items():
        path = Path(repo.working_tree_dir or ".") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        repo.index.add([name])
    author = git.Actor("Backend Team", "backend@example.invalid")
    return repo.index.commit(message, author=author, committer=author).hexsha


# The local server (nx-27017) has no authentication: it accepts any PLAIN credentials (and fails pymongo's
# default SCRAM handshake). On it the sandbox's URI carries a canary user and password over PLAIN, so the
# tests can check that the database password from the target's .env never reaches Slack or the logs.
LOCAL_SERVER_AUTH = "authMechanism=PLAIN"


def create_sandbox(root: Path, *, mongo_uri: str, local_server: bool = False, mongo_dir: Path | None = None,
                   port: int | None = None, size: SandboxSize = TINY) -> Sandbox:
    """Write the target repository under ``root/ai-professor-backend`` and return what was made.

    Tenant data goes to the server at ``mongo_uri``, in databases named for this sandbox. ``local_server``:
    that server is a ``bot.dev.localmongo`` one (canary credentials, above); ``mongo_dir``: it is the sandbox's
    own, keeping its data there (recorded, so stopping the sandbox stops it too). ``size``: the backend's
    language and size (above).
    Nothing runs yet: ``start_apps`` installs (TypeScript), builds the broken HEAD and starts it under pm2.
    """
    port = port or free_port()
    repo_dir = Path(root) / "ai-professor-backend"
    repo_dir.mkdir(parents=True, exist_ok=False)
    repo = git.Repo.init(repo_dir, initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Backend Team")
        cfg.set_value("user", "email", "backend@example.invalid")
    name: Callable[[str], str] = _ts if size.typescript else str
    source: Callable[[str], str] = _ts_source if size.typescript else str
    if size.typescript:
        server = TS_SERVER_GOOD
        first = _typescript_tree(size.modules)
        # the machine's yarn settings (as a server's ~/.yarnrc): packages from the offline mirror, never the network
        (Path(root) / ".yarnrc").write_text(f'yarn-offline-mirror "{OFFLINE_MIRROR}"\n--install.offline true\n',
                                            encoding="utf-8")
    else:
        package = {"name": "ai-professor-backend", "version": "1.0.0", "private": True,
                   "scripts": {"build": "node build.js", "start": "node dist/server.js"}}
        server = SERVER_GOOD
        first = {"package.json": json.dumps(package, indent=2) + "\n", "build.js": BUILD, "src/server.js": SERVER_GOOD,
                 "src/env.js": ENV_LOADER, ".gitignore": "node_modules/\ndist/\n.env\n"}
    _commit(repo, "initial backend", first)
    _commit(repo, "fix feedback generation", {name("src/feedback.js"): source("module.exports = () => 'feedback';\n")})
    good = _commit(repo, "added new features", {name("src/features.js"): source("module.exports = ['sessions'];\n")})
    broken = good
    for message, file, content in PHASES:
        broken = _commit(repo, message, {name(file): source(content)})
    broken = _commit(repo, "Phase 3: Wire assessment into health",
                     {name("src/server.js"): server.replace(*SERVER_BROKEN_PATCH)})
    token = secrets.token_hex(4)
    split = urlsplit(mongo_uri)
    netloc, query = split.netloc, split.query
    if local_server:
        netloc = f"backend:canary-db-{secrets.token_hex(6)}@{netloc.rsplit('@', 1)[-1]}"
        query = "&".join(q for q in (query, LOCAL_SERVER_AUTH) if q)
    central_uri = urlunsplit((split.scheme, netloc, f"/sbx{token}_central", query, ""))
    tenant_dbs = tuple(f"sbx{token}_{slug}" for _, slug in TENANTS)
    canaries = {
        "CENTRAL_DB_URI": central_uri,
        "JWT_SECRET": f"canary-jwt-{secrets.token_hex(8)}",
        "HEALTH_BEARER_TOKEN": f"canary-bearer-{secrets.token_hex(8)}",
    }
    env = "\n".join([f"PORT={port}", "ENABLE_REALTIME_TIPS=true", *(f"{k}={v}" for k, v in canaries.items())])
    (repo_dir / ".env").write_text("# backend settings\n" + env + "\n", encoding="utf-8")
    (Path(root) / "ai-server").mkdir(exist_ok=True)
    (Path(root) / "ai-server" / "ai.js").write_text(AI_SERVER, encoding="utf-8")
    sandbox = Sandbox(root=Path(root), repo=repo_dir, good_commit=good, broken_commit=broken, canaries=canaries,
                      port=port, central_uri=central_uri, tenant_dbs=tenant_dbs, pm2_home=Path(root) / "pm2-home",
                      mongo_dir=Path(mongo_dir).resolve() if mongo_dir else None, typescript=size.typescript,
                      modules=size.modules)
    seed_tenants(sandbox)
    sandbox.save()
    return sandbox


def seed_tenants(sandbox: Sandbox) -> None:
    """Central `schools` (one soft-deleted) and per-tenant databases carrying the Phase 1–3 fields."""
    from bot.config import RUNBOOK_CLEANUP_FIELDS
    from bot.ops import tenants

    client = tenants.connect(sandbox.central_uri)
    try:
        central = client[tenants.default_database(sandbox.central_uri)]
        schools: list[dict[str, Any]] = [{"name": name, "db_name": db, "deleted_at": None}
                   for (name, _), db in zip(TENANTS, sandbox.tenant_dbs, strict=True)]
        old_db = sandbox.tenant_dbs[0].rsplit("_", 1)[0] + "_" + DELETED_TENANT[1]
        schools.append({"name": DELETED_TENANT[0], "db_name": old_db, "deleted_at": datetime(2026, 1, 5, tzinfo=UTC)})
        central.schools.insert_many(schools)
        for index, db_name in enumerate(sandbox.tenant_dbs):
            db = client[db_name]
            cases = []
            for n in range(4 + 2 * index):
                case = {"title": f"Case {n}", "internship_id": f"int-{n % 2}", "created_at": datetime(2026, 2, 1,
                                                                                                    tzinfo=UTC)}
                if n % 3 != 2:  # most cases were migrated by Phase 1 and carry the new fields
                    case.update({field: f"{field}-{n}" for field in RUNBOOK_CLEANUP_FIELDS})
                cases.append(case)
            db.internshipcases.insert_many(cases)
            db.internship_case_attempts.insert_many([{"case": n, "attempt": a} for n in range(3) for a in range(2)])
            db.users.insert_many([{"name": f"student-{n}", "role": "student"} for n in range(3)])
        client[old_db].internshipcases.insert_one({"title": "archived"})
    finally:
        tenants.close(client)


def has_tenants(sandbox: Sandbox) -> bool:
    """The central `schools` still lists tenants (a local server's data folder may have been removed)."""
    from bot.ops import tenants

    client = tenants.connect(sandbox.central_uri)
    try:
        return client[tenants.default_database(sandbox.central_uri)].schools.count_documents({}) > 0
    finally:
        tenants.close(client)


def start_apps(sandbox: Sandbox) -> None:
    """Build the checked-out code with the real yarn (installing first if nothing is installed yet) and start
    both apps under the real pm2."""
    from bot.ops.build import Yarn
    from bot.ops.pm2 import Pm2
    from bot.ops.probe import probe

    yarn = Yarn()
    if sandbox.typescript and not (sandbox.repo / "node_modules").exists():
        installed = yarn.install(sandbox.repo)
        if not installed.ok:
            raise RuntimeError(f"the sandbox's yarn install failed: {installed.tail(5)}")
    build = yarn.rebuild(sandbox.repo)
    if not build.ok:
        raise RuntimeError(f"the sandbox did not build: {build.last.tail(5)}")
    pm2 = Pm2(home=sandbox.pm2_home)
    started = pm2.start(sandbox.repo / "dist" / "server.js", sandbox.apps[0], sandbox.repo)
    if not started.ok:
        raise RuntimeError(f"pm2 could not start the backend: {started.tail(5)}")
    pm2.start(sandbox.root / "ai-server" / "ai.js", sandbox.apps[1], sandbox.root / "ai-server")
    deadline = time.monotonic() + 20
    while probe(sandbox.health_url, timeout=2).status is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the sandbox backend did not start listening")
        time.sleep(0.2)


def interrupt_install(sandbox: Sandbox) -> None:
    """Leave the TypeScript backend's node_modules as an interrupted install does (the compiler's files half
    there): `yarn build` then fails until the runbook's clean install (remove node_modules and dist, `yarn
    install`, `yarn build`), which works offline."""
    if not sandbox.typescript:
        raise ValueError("only the TypeScript sandbox installs packages")
    lib = sandbox.repo / "node_modules" / "typescript" / "lib"
    for name in ("tsc.js", "_tsc.js", "typescript.js"):
        (lib / name).unlink(missing_ok=True)


def stop_apps(sandbox: Sandbox) -> None:
    """Stop the sandbox's own pm2 daemon (its PM2_HOME), leaving nothing running."""
    from bot.ops.pm2 import Pm2

    if sandbox.pm2_home and sandbox.pm2_home.exists():
        Pm2(home=sandbox.pm2_home).kill()


def drop_tenants(sandbox: Sandbox) -> None:
    """Remove the sandbox's databases from its server."""
    from bot.ops import tenants

    client = tenants.connect(sandbox.central_uri)
    try:
        for name in (tenants.default_database(sandbox.central_uri), *sandbox.tenant_dbs,
                     sandbox.tenant_dbs[0].rsplit("_", 1)[0] + "_old"):
            client.drop_database(name)
    finally:
        tenants.close(client)
