"""A chat-robot webhook server for the tests, on 127.0.0.1 only.

Checks each platform's request as its public documentation defines it:
- DingTalk custom robot: POST /robot/send?access_token=T&timestamp=MS&sign=S,
  S = urlencode(base64(HMAC-SHA256(secret, f"{MS}\\n{secret}"))), MS within an hour;
  body msgtype markdown with markdown.title and markdown.text.
- WeCom group robot: POST /cgi-bin/webhook/send?key=K; msgtype markdown
  (markdown.content <= 4096 bytes) or text (text.content, mentioned_mobile_list).
- Feishu custom bot: POST /open-apis/bot/v2/hook/T; body timestamp (s) and
  sign = base64(HMAC-SHA256(key=f"{ts}\\n{secret}", msg=b"")), within an hour.
Answers like the platforms: HTTP 200 with errcode/code. A plan of answers
(POST /_plan, a JSON list: {"code": 45009} or {"sleep": 3}) is used up first,
one per request. GET /_log: the accepted messages, as JSON lines.

Usage: robot_server.py PORT TOKEN SECRET
"""
import base64, hashlib, hmac, json, sys, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, TOKEN, SECRET = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
plan = []
log = []


def hmac_b64(key, msg):
    return base64.b64encode(hmac.new(key.encode(), msg.encode(), hashlib.sha256).digest()).decode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, obj, status=200):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_log":
            with lock:
                data = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in log).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.answer({"errcode": 404}, 404)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if url.path == "/_plan":
            with lock:
                plan.extend(json.loads(raw))
            return self.answer({"ok": True})
        with lock:
            step = plan.pop(0) if plan else {}
        if "sleep" in step:
            time.sleep(step["sleep"])
        body = json.loads(raw)
        now = time.time()
        if url.path == "/robot/send":
            if query.get("access_token") != [TOKEN]:
                return self.answer({"errcode": 300001, "errmsg": "token is not exist"})
            ts = query.get("timestamp", [""])[0]
            # parse_qs has undone the urlencode: compare the base64 itself.
            sign = query.get("sign", [""])[0]
            if sign != hmac_b64(SECRET, f"{ts}\n{SECRET}") or abs(now * 1000 - int(ts or 0)) > 3600_000:
                return self.answer({"errcode": 310000, "errmsg": "sign not match"})
            if body.get("msgtype") != "markdown" or not body["markdown"].get("title"):
                return self.answer({"errcode": 40035, "errmsg": "缺少参数 json"})
            if len(json.dumps(body, ensure_ascii=False).encode()) > 20000:
                return self.answer({"errcode": 460101, "errmsg": "message too long"})
            kind = "dingtalk"
        elif url.path == "/cgi-bin/webhook/send":
            if query.get("key") != [TOKEN]:
                return self.answer({"errcode": 93000, "errmsg": "invalid webhook url"})
            t = body.get("msgtype")
            if t == "markdown" and len(body["markdown"]["content"].encode()) > 4096:
                return self.answer({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"})
            if t not in ("markdown", "text"):
                return self.answer({"errcode": 40008, "errmsg": "invalid message type"})
            kind = "wecom"
        elif url.path == "/open-apis/bot/v2/hook/" + TOKEN:
            ts = body.get("timestamp", "0")
            if body.get("sign") != hmac_b64(f"{ts}\n{SECRET}", "") or abs(now - int(ts)) > 3600:
                return self.answer({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time", "data": {}})
            if len(raw) > 20 * 1024 or body.get("msg_type") != "interactive":
                return self.answer({"code": 9499, "msg": "Bad Request", "data": {}})
            kind = "feishu"
        else:
            return self.answer({"errcode": 404, "errmsg": "no such path"}, 404)
        if "code" in step:
            c = step["code"]
            return self.answer({"code": c, "msg": "planned", "data": {}} if kind == "feishu" else {"errcode": c, "errmsg": "planned"})
        with lock:
            log.append({"kind": kind, "body": body})
        if kind == "feishu":
            return self.answer({"code": 0, "msg": "success", "data": {}})
        return self.answer({"errcode": 0, "errmsg": "ok"})


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
