#!/usr/bin/python3
"""A mock Hugging Face hub for vtx's hub tests (loopback only, ephemeral port).

usage: mock_hub.py CONFIG.json

CONFIG:
  port_file   where the bound port is written (atomically) once the server listens on 127.0.0.1
  log         JSON lines, one per request: method, path, host, auth (the Authorization header or null), range,
              status (negative: the body was cut)
  faults      optional JSON file, re-read on every request (counters restart when its content changes):
                fail_once: [file names]    the first resolve of each answers 500
                cut: {file name: n}        the first n CDN bodies of that file stop halfway (connection closed)
                corrupt: [file names]      CDN bodies with one byte flipped (same size: sha256 differs)
                slow: seconds              sleep per 16 KiB CDN chunk
  cdn_host    host name used in the absolute redirect to the "CDN" path /cdn/<sha256> (default 127.0.0.1)
  repos:      {"org/name": {"refs": {branch or tag: commit}, "commits": {commit: folder}, "token": optional}}
  renames:    {"old/name": "org/name"}   resolve answers a relative 307 to the new name

Like the hub: HEAD/GET /{repo}/resolve/{revision}/{file} answer X-Repo-Commit and ETag (git blob sha1, weak for
.json files); *.safetensors files are LFS: a 302 to the CDN with X-Linked-Etag (sha256) and X-Linked-Size.
Missing file: 404 X-Error-Code EntryNotFound + X-Repo-Commit; unknown revision: 404 RevisionNotFound; unknown
repo: 404 RepoNotFound; gated repo without the right Bearer token: 401 GatedRepo.
GET /api/models/{repo}/revision/{revision}: {"sha", "siblings": [{"rfilename"}]}.
"""
import hashlib
import http.server
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

CFG = json.load(open(sys.argv[1]))
LOG_LOCK = threading.Lock()
STATE_LOCK = threading.Lock()
STATE = {"faults_text": None, "fired": {}}
FILES = {}  # (commit) -> {name: info}
BLOBS = {}  # sha256 -> (path, names)


def file_info(path, name):
    data = open(path, "rb").read()
    sha = hashlib.sha256(data).hexdigest()
    git = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return {"path": path, "size": len(data), "sha256": sha, "git": git, "lfs": name.endswith(".safetensors")}


def commit_files(repo, commit):
    key = (repo, commit)
    if key not in FILES:
        folder = CFG["repos"][repo]["commits"][commit]
        files = {}
        for name in sorted(os.listdir(folder)):
            p = os.path.join(folder, name)
            if os.path.isfile(p):
                files[name] = file_info(p, name)
                BLOBS.setdefault(files[name]["sha256"], (p, set()))[1].add(name)
        FILES[key] = files
    return FILES[key]


def faults():
    path = CFG.get("faults")
    text = ""
    if path and os.path.exists(path):
        text = open(path).read()
    with STATE_LOCK:
        if text != STATE["faults_text"]:
            STATE["faults_text"] = text
            STATE["fired"] = {}
    return json.loads(text) if text.strip() else {}


def fire(key, limit):
    """True for the first `limit` calls with this key since the faults changed."""
    with STATE_LOCK:
        n = STATE["fired"].get(key, 0)
        if n >= limit:
            return False
        STATE["fired"][key] = n + 1
        return True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, status):
        entry = {"method": self.command, "path": self.path, "host": self.headers.get("Host"),
                 "auth": self.headers.get("Authorization"), "range": self.headers.get("Range"), "status": status}
        with LOG_LOCK:
            with open(CFG["log"], "a") as f:
                f.write(json.dumps(entry) + "\n")

    def reply(self, status, headers=None, body=b""):
        self.record(status)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, status, code, message, extra=None):
        h = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        h.update(extra or {})
        self.reply(status, h, json.dumps({"error": message}).encode())

    def do_HEAD(self):
        self.handle_any()

    def do_GET(self):
        self.handle_any()

    def handle_any(self):
        try:
            path = urllib.parse.urlsplit(self.path).path
            parts = path.split("/")
            if path.startswith("/cdn/"):
                return self.cdn(parts[2])
            if path.startswith("/api/models/"):
                return self.api(parts)
            if len(parts) >= 6 and parts[3] == "resolve":
                repo = parts[1] + "/" + parts[2]
                rev = urllib.parse.unquote(parts[4])
                name = urllib.parse.unquote("/".join(parts[5:]))
                return self.resolve(repo, rev, name, "/".join(parts[5:]), parts[4])
            self.error(404, "NotFound", "no route")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def repo_access(self, repo):
        """None when the request may read the repo, else the error already sent."""
        if repo not in CFG["repos"]:
            self.error(404, "RepoNotFound", "Repository not found")
            return False
        token = CFG["repos"][repo].get("token")
        if token and self.headers.get("Authorization") != "Bearer " + token:
            self.error(401, "GatedRepo", "Access to model %s is restricted" % repo)
            return False
        return True

    def commit_of(self, repo, rev):
        r = CFG["repos"][repo]
        if rev in r["commits"]:
            return rev
        return r["refs"].get(rev)

    def resolve(self, repo, rev, name, raw_name, raw_rev):
        if repo in CFG.get("renames", {}):
            new = CFG["renames"][repo]
            return self.reply(307, {"Location": "/%s/resolve/%s/%s" % (new, raw_rev, raw_name)})
        if not self.repo_access(repo):
            return
        commit = self.commit_of(repo, rev)
        if commit is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
        f = faults()
        if name in f.get("fail_once", []) and fire("fail_once:" + name, 1):
            return self.error(500, "Internal", "Internal Error", {"X-Repo-Commit": commit})
        files = commit_files(repo, commit)
        if name not in files:
            return self.error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit})
        info = files[name]
        if info["lfs"]:
            host = CFG.get("cdn_host", "127.0.0.1")
            loc = "http://%s:%d/cdn/%s" % (host, self.server.server_address[1], info["sha256"])
            pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
                info["sha256"].encode(), info["size"])
            return self.reply(302, {"Location": loc, "X-Repo-Commit": commit,
                                    "X-Linked-Etag": '"%s"' % info["sha256"], "X-Linked-Size": str(info["size"]),
                                    "ETag": '"%s"' % hashlib.sha1(pointer).hexdigest()}, b"")
        etag = ('W/"%s"' if name.endswith(".json") else '"%s"') % info["git"]
        body = open(info["path"], "rb").read()
        self.reply(200, {"X-Repo-Commit": commit, "ETag": etag, "Content-Type": "application/octet-stream"}, body)

    def api(self, parts):
        # /api/models/{org}/{name}/revision/{rev}
        if len(parts) < 7 or parts[5] != "revision":
            return self.error(404, "NotFound", "no route")
        repo = parts[3] + "/" + parts[4]
        if not self.repo_access(repo):
            return
        commit = self.commit_of(repo, urllib.parse.unquote(parts[6]))
        if commit is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id")
        names = sorted(commit_files(repo, commit))
        body = json.dumps({"id": repo, "sha": commit, "siblings": [{"rfilename": n} for n in names]}).encode()
        self.reply(200, {"Content-Type": "application/json"}, body)

    def cdn(self, sha):
        if sha not in BLOBS:
            return self.error(404, "NotFound", "no such blob")
        path, names = BLOBS[sha]
        data = bytearray(open(path, "rb").read())
        f = faults()
        if any(n in f.get("corrupt", []) for n in names):
            data[len(data) // 2] ^= 0xFF
        start = 0
        rng = self.headers.get("Range")
        status, headers = 200, {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                return self.reply(416, {"Content-Range": "bytes */%d" % len(data)})
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = bytes(data[start:])
        cut = any(fire("cut:" + n, f.get("cut", {}).get(n, 0)) for n in names if n in f.get("cut", {}))
        self.record(status if not cut else -status)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        send = body[: len(body) // 2] if cut else body
        slow = float(f.get("slow", 0))
        for i in range(0, len(send), 16384):
            self.wfile.write(send[i:i + 16384])
            if slow:
                self.wfile.flush()
                time.sleep(slow)
        self.wfile.flush()
        if cut:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = CFG["port_file"] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, CFG["port_file"])
    srv.serve_forever()


if __name__ == "__main__":
    main()
