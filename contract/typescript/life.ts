// A job's whole life, and the error paths a caller meets, through a client generated from
// docs/openapi.yaml by openapi-typescript at its defaults, with openapi-fetch. Strict
// TypeScript, no casts, no `any`: every field read below is typed by the document.
// Run by tests/contract/test_generated_clients.py against a local cloud.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Job = components["schemas"]["Job"];
type ErrorBody = components["schemas"]["Error"];

function need(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`unexpected: ${what}`);
}

const baseUrl = need("JOBS_URL");
const service = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${need("JOBS_SERVICE_TOKEN")}` } });
const admin = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${need("JOBS_ADMIN_TOKEN")}` } });
let calls = 0;

// Every answer, error or not, carries the correlation id the document promises.
function seen(response: Response, status: number, what: string): void {
  calls += 1;
  check(response.status === status, `${what}: status ${response.status}, expected ${status}`);
  check((response.headers.get("X-Correlation-Id") ?? "") !== "", `${what}: no X-Correlation-Id`);
}

function failed(error: ErrorBody | undefined, code: components["schemas"]["ErrorCode"], what: string): ErrorBody {
  check(error !== undefined && error.error.code === code, `${what}: expected ${code}`);
  return error;
}

async function life(queue: string): Promise<void> {
  const created = await service.POST("/v1/jobs", {
    body: { type: queue, ref_id: "order-1", unique: true, params: { pages: 3 }, title: "typescript" },
  });
  seen(created.response, 201, "create");
  check(created.data !== undefined, "create answered a job");
  const job: Job = created.data;
  check(job.state === "pending" && job.priority === 2 && job.attempts === 0, "a new job is pending, priority 2");

  const twin = await service.POST("/v1/jobs", { body: { type: queue, ref_id: "order-1", unique: true } });
  seen(twin.response, 200, "unique create");
  check(twin.data !== undefined && twin.data.id === job.id, "the unfinished twin is answered");

  const got = await service.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } });
  seen(got.response, 200, "get");
  check(got.data !== undefined && got.data.title === "typescript", "get");

  const claimed = await service.POST("/v1/queues/{type}/claim", {
    params: { path: { type: queue } },
    body: { timeout_ms: 60000, worker: "typescript" },
  });
  seen(claimed.response, 200, "claim");
  check(claimed.data !== undefined && "lease_token" in claimed.data, "claim answered one leased job");
  const leased = claimed.data;
  check(leased.id === job.id && leased.state === "running" && leased.lease_owner === "typescript", "claimed");
  const token = leased.lease_token;

  const extended = await service.POST("/v1/jobs/{id}/extend", {
    params: { path: { id: job.id } },
    body: { lease_token: token, timeout_ms: 90000 },
  });
  seen(extended.response, 200, "extend");
  check(extended.data !== undefined && !extended.data.cancel_requested, "extend");

  const posted = await service.POST("/v1/jobs/{id}/status", {
    params: { path: { id: job.id } },
    body: {
      lease_token: token,
      extend_ms: 60000,
      new_status: "page 1 of 3",
      progress: { title: "pages", current: 1, maximum: 3 },
      speeds: [{ title: "pages", speed: 2.5, unit: "pages/s" }],
      message_to_append: "started",
    },
  });
  seen(posted.response, 200, "status");
  check(posted.data !== undefined && posted.data.progress?.current === 1, "status post");

  const messages = await service.GET("/v1/jobs/{id}/messages", { params: { path: { id: job.id }, query: { limit: 10 } } });
  seen(messages.response, 200, "messages");
  check(messages.data !== undefined && messages.data.data.map((m) => m.message).includes("started"), "messages");

  const completed = await service.POST("/v1/jobs/{id}/complete", {
    params: { path: { id: job.id } },
    body: { lease_token: token, result: { pages: 3 } },
  });
  seen(completed.response, 200, "complete");
  check(completed.data !== undefined && completed.data.state === "finished" && completed.data.complete, "finished");

  // Completed again with the same token: 200, and the first result stays.
  const again = await service.POST("/v1/jobs/{id}/complete", {
    params: { path: { id: job.id } },
    body: { lease_token: token, result: { pages: 99 } },
  });
  seen(again.response, 200, "complete again");
  const result = await service.GET("/v1/jobs/{id}/result", { params: { path: { id: job.id } } });
  seen(result.response, 200, "result");
  check(JSON.stringify(result.data?.result) === JSON.stringify({ pages: 3 }), "the first result is kept");

  // Another token on the finished job: lease_lost, and the details say the job's state.
  const stale = await service.POST("/v1/jobs/{id}/complete", {
    params: { path: { id: job.id } },
    body: { lease_token: "not-the-lease", result: null },
  });
  seen(stale.response, 409, "complete with another token");
  check(failed(stale.error, "lease_lost", "stale complete").error.details.state === "finished", "lease_lost state");
}

async function errors(queue: string): Promise<void> {
  const bad = await service.POST("/v1/jobs", { body: { type: queue, priority: 9 } });
  seen(bad.response, 400, "invalid create");
  const fields = failed(bad.error, "invalid_request", "invalid create").error.details.fields ?? {};
  check("priority" in fields, "details.fields names priority");

  const missing = await service.GET("/v1/jobs/{id}", { params: { path: { id: "01JAAAAAAAAAAAAAAAAAAAAAAA" } } });
  seen(missing.response, 404, "missing job");
  failed(missing.error, "not_found", "missing job");

  const created = await service.POST("/v1/jobs", { body: { type: queue, state: "idle" } });
  seen(created.response, 201, "create idle");
  check(created.data !== undefined && created.data.state === "idle", "idle");
  const id = created.data.id;
  const started = await service.POST("/v1/jobs/{id}/start", { params: { path: { id } }, body: { worker: "typescript" } });
  seen(started.response, 200, "start");
  check(started.data !== undefined, "start answered the job");
  const token = started.data.lease_token;

  const notRunning = await service.POST("/v1/jobs/{id}/abort", { params: { path: { id } }, body: { lease_token: token } });
  seen(notRunning.response, 200, "abort");
  const held = await service.POST("/v1/jobs/{id}/fail", {
    params: { path: { id } },
    body: { lease_token: token, error: { code: "boom", message: "gone wrong" }, retry: false },
  });
  seen(held.response, 409, "fail after abort");
  check(failed(held.error, "not_running", "fail after abort").error.details.state === "pending", "not_running state");

  const again = await service.POST("/v1/jobs/{id}/start", { params: { path: { id } }, body: {} });
  seen(again.response, 200, "start again");
  check(again.data !== undefined, "start again answered the job");
  const fail = await service.POST("/v1/jobs/{id}/fail", {
    params: { path: { id } },
    body: { lease_token: again.data.lease_token, error: { code: "boom", message: "gone wrong" }, retry: false },
  });
  seen(fail.response, 200, "fail");
  check(fail.data !== undefined && fail.data.state === "error" && fail.data.error?.code === "boom", "error");

  const retried = await admin.POST("/v1/jobs/{id}/retry", { params: { path: { id } } });
  seen(retried.response, 200, "retry");
  check(retried.data !== undefined && retried.data.state === "pending" && retried.data.attempts === 0, "retried");

  // complete: true on a status post finishes the job.
  const claimed = await service.POST("/v1/claim", { body: { types: [queue], max_jobs: 2 } });
  seen(claimed.response, 200, "claim any");
  check(claimed.data !== undefined && "data" in claimed.data && claimed.data.data.length === 1, "a list of one");
  const [leased] = claimed.data.data;
  check(leased !== undefined && leased.id === id, "the retried job");
  const done = await service.POST("/v1/jobs/{id}/status", {
    params: { path: { id } },
    body: { lease_token: leased.lease_token, new_status: "all done", complete: true },
  });
  seen(done.response, 200, "status with complete");
  check(done.data !== undefined && done.data.state === "finished" && done.data.status === "all done", "finished by a post");

  const none = await service.POST("/v1/queues/{type}/claim", { params: { path: { type: queue } }, body: {} });
  seen(none.response, 204, "claim from an empty queue");

  const schema = await service.GET("/v1/schema");
  seen(schema.response, 200, "schema");
  check(schema.data !== undefined && "state" in schema.data.properties && schema.data.required.includes("id"), "schema");

  const deleted = await service.DELETE("/v1/jobs/{id}", { params: { path: { id } } });
  seen(deleted.response, 200, "delete");
}

async function main(): Promise<void> {
  const queue = `ts-life-${Date.now()}`;
  await life(queue);
  await errors(`${queue}-errors`);
  console.log(JSON.stringify({ ok: true, calls }));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
