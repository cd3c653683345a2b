// sdk_peer.js: the AWS SDK for JavaScript v3 (a client we did not write, and the one the
// original Lambda's users run) against bmas-emulator. It checks what the CLIs do not: the SDK
// verifies MD5OfMessageBody / MD5OfMessageAttributes on every SQS answer, sends S3 bodies with
// its default CRC32 checksums and validates the ones returned, and speaks JSON 1.0 to SQS and
// CloudWatch. Prints TAP lines ("ok - ..." / "not ok - ..."); exit 1 on any failure.
// usage: node sdk_peer.js ENDPOINT_URL
"use strict";
const crypto = require("node:crypto");
const http = require("node:http");
const { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand,
    ListObjectsV2Command, PutBucketNotificationConfigurationCommand, DeleteObjectCommand } =
    require("@aws-sdk/client-s3");
const { SQSClient, CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand,
    SendMessageBatchCommand, ReceiveMessageCommand, DeleteMessageCommand } =
    require("@aws-sdk/client-sqs");
const { CloudWatchClient, PutMetricDataCommand, GetMetricStatisticsCommand,
    GetMetricDataCommand } = require("@aws-sdk/client-cloudwatch");

const endpoint = process.argv[2];
if (!endpoint) {
    console.error("usage: node sdk_peer.js ENDPOINT_URL");
    process.exit(2);
}
const region = "us-east-1";
const good = { accessKeyId: "test", secretAccessKey: "test" };
const cfg = (credentials) => ({ endpoint, region, credentials, maxAttempts: 1 });
const s3 = new S3Client({ ...cfg(good), forcePathStyle: true });
const sqs = new SQSClient(cfg(good));
const cw = new CloudWatchClient(cfg(good));

let failed = 0;
async function check(name, fn) {
    try {
        await fn();
        console.log(`ok - ${name}`);
    } catch (e) {
        failed = 1;
        console.log(`not ok - ${name}`);
        console.log(`#   ${String(e && (e.stack || e)).split("\n").slice(0, 4).join("\n#   ")}`);
    }
}
function eq(got, want, what) {
    const g = JSON.stringify(got), w = JSON.stringify(want);
    if (g !== w)
        throw new Error(`${what || "value"}: got ${g}, want ${w}`);
}
async function rejects(p, name) {
    try {
        await p;
    } catch (e) {
        eq(e.name, name, "error name");
        return e;
    }
    throw new Error(`expected ${name}, the call succeeded`);
}
const md5 = (b) => crypto.createHash("md5").update(b).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
    const run = `${process.pid}`;
    const bucket = `sdk-${run}`;
    const key = "team a/ü+x%2B(1).json.gz";
    const body = crypto.randomBytes(300000);
    let queueUrl;

    await check("SQS CreateQueue (JSON 1.0)", async () => {
        queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `sdk-${run}` }))).QueueUrl;
        if (!queueUrl.endsWith(`/sdk-${run}`))
            throw new Error(`queue URL ${queueUrl}`);
    });
    await check("S3 CreateBucket + notification to the queue (TestEvent checked by the SDK's MD5)", async () => {
        await s3.send(new CreateBucketCommand({ Bucket: bucket }));
        const arn = (await sqs.send(new GetQueueAttributesCommand({
            QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }))).Attributes.QueueArn;
        await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket,
            NotificationConfiguration: { QueueConfigurations: [{ QueueArn: arn,
                Events: ["s3:ObjectCreated:*"], Filter: { Key: { FilterRules: [
                    { Name: "suffix", Value: ".gz" }] } } }] } }));
        const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl,
            WaitTimeSeconds: 5, MaxNumberOfMessages: 1 }));
        eq(JSON.parse(r.Messages[0].Body).Event, "s3:TestEvent");
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl,
            ReceiptHandle: r.Messages[0].ReceiptHandle }));
    });
    await check("S3 PutObject with the SDK's CRC32 checksum, UTF-8/space/+/% key", async () => {
        const r = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body,
            ContentEncoding: "gzip" }));
        eq(r.ETag, `"${md5(body)}"`, "ETag");
    });
    await check("S3 GetObject: the bytes back, checksum validated by the SDK", async () => {
        const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key,
            ChecksumMode: "ENABLED" }));
        const got = Buffer.from(await r.Body.transformToByteArray());
        eq(got.equals(body), true, "same bytes");
        eq(r.ContentEncoding, "gzip", "Content-Encoding kept");
    });
    await check("S3 GetObject Range and HeadObject", async () => {
        const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key,
            Range: "bytes=10-19" }));
        const got = Buffer.from(await r.Body.transformToByteArray());
        eq(got.equals(body.subarray(10, 20)), true, "range bytes");
        const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        eq(h.ContentLength, body.length, "ContentLength");
    });
    await check("S3 ListObjectsV2 returns the key decoded", async () => {
        const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "team a/" }));
        eq(r.Contents.map((c) => c.Key), [key]);
    });
    await check("S3 GetObject of a missing key: NoSuchKey", async () => {
        await rejects(s3.send(new GetObjectCommand({ Bucket: bucket, Key: "nope" })), "NoSuchKey");
    });
    await check("the ObjectCreated event reaches SQS with the key form-encoded", async () => {
        const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl,
            WaitTimeSeconds: 5, MaxNumberOfMessages: 1, MessageSystemAttributeNames: ["All"] }));
        const ev = JSON.parse(r.Messages[0].Body).Records[0];
        eq(ev.eventName, "ObjectCreated:Put", "eventName");
        eq(decodeURIComponent(ev.s3.object.key.replace(/\+/g, " ")), key, "key");
        eq(ev.s3.object.eTag, md5(body), "eTag");
        eq(ev.s3.object.size, body.length, "size");
        eq(r.Messages[0].Attributes.ApproximateReceiveCount, "1", "receive count");
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl,
            ReceiptHandle: r.Messages[0].ReceiptHandle }));
    });
    await check("SQS SendMessage/Batch with attributes: MD5s checked by the SDK", async () => {
        const attrs = { team: { DataType: "String", StringValue: "ü" },
            n: { DataType: "Number", StringValue: "42" },
            raw: { DataType: "Binary", BinaryValue: Buffer.from([0, 1, 255]) } };
        const one = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl,
            MessageBody: "héllo {\"a\":1}", MessageAttributes: attrs }));
        eq(one.MD5OfMessageBody, md5("héllo {\"a\":1}"));
        const b = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl,
            Entries: [1, 2, 3].map((i) => ({ Id: `e${i}`, MessageBody: `m${i}`,
                MessageAttributes: attrs })) }));
        eq(b.Successful.length, 3, "batch entries");
        const seen = [];
        for (let i = 0; i < 10 && seen.length < 4; i++) {
            const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl,
                MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ["All"] }));
            for (const m of r.Messages || []) {
                eq(Buffer.from(m.MessageAttributes.raw.BinaryValue).toString("hex"), "0001ff");
                seen.push(m.Body);
                await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl,
                    ReceiptHandle: m.ReceiptHandle }));
            }
        }
        eq(seen.sort(), ["héllo {\"a\":1}", "m1", "m2", "m3"]);
    });

    const ns = `BmasSdkPeer${run}`;
    const ts = new Date(Math.floor(Date.now() / 60000) * 60000 - 10 * 60000);
    const dims = [{ Name: "InferenceProfileType", Value: "CrossRegion" }];
    await check("CloudWatch PutMetricData (JSON 1.0): Value, Values/Counts, StatisticValues", async () => {
        await cw.send(new PutMetricDataCommand({ Namespace: ns, MetricData: [
            { MetricName: "InputTokens", Dimensions: dims, Timestamp: ts, Value: 5 },
            { MetricName: "InputTokens", Dimensions: dims, Timestamp: ts,
                Values: [10, 20], Counts: [2, 3] },
            { MetricName: "InputTokens", Dimensions: dims, Timestamp: ts,
                StatisticValues: { SampleCount: 4, Sum: 400, Minimum: 7, Maximum: 250 } }] }));
    });
    await check("CloudWatch GetMetricStatistics reads back exact statistics", async () => {
        const r = await cw.send(new GetMetricStatisticsCommand({ Namespace: ns,
            MetricName: "InputTokens", Dimensions: dims, StartTime: new Date(ts - 60000),
            EndTime: new Date(+ts + 120000), Period: 60,
            Statistics: ["Sum", "SampleCount", "Minimum", "Maximum"] }));
        eq(r.Datapoints.length, 1, "datapoints");
        const d = r.Datapoints[0];
        // 5 + 10*2 + 20*3 + 400; 1 + 2 + 3 + 4 samples.
        eq([d.Sum, d.SampleCount, d.Minimum, d.Maximum], [485, 10, 5, 250]);
    });
    await check("CloudWatch GetMetricData agrees", async () => {
        const r = await cw.send(new GetMetricDataCommand({ StartTime: new Date(ts - 60000),
            EndTime: new Date(+ts + 120000), MetricDataQueries: [{ Id: "s", MetricStat: {
                Metric: { Namespace: ns, MetricName: "InputTokens", Dimensions: dims },
                Period: 60, Stat: "Sum" } }] }));
        eq(r.MetricDataResults[0].Values, [485]);
    });
    await check("CloudWatch rejects 31 dimensions with the SDK's typed error", async () => {
        const many = Array.from({ length: 31 }, (_, i) => ({ Name: `d${i}`, Value: "v" }));
        const e = await rejects(cw.send(new PutMetricDataCommand({ Namespace: ns, MetricData: [
            { MetricName: "X", Dimensions: many, Value: 1 }] })), "InvalidParameterValueException");
        eq(e.$metadata.httpStatusCode, 400, "status");
    });

    // The SDK's default S3 addressing: virtual-hosted style, the bucket in the Host header, as
    // with LocalStack's s3.localhost.localstack.cloud. Every name resolves to the emulator here.
    await check("S3 virtual-hosted style (the SDK's default): put, get, list", async () => {
        const lookup = (h, o, cb) => (o && o.all ? cb(null, [{ address: "127.0.0.1", family: 4 }])
            : cb(null, "127.0.0.1", 4));
        const port = new URL(endpoint).port;
        const vh = new S3Client({ ...cfg(good), endpoint: `http://s3.localhost.localstack.cloud:${port}`,
            requestHandler: { httpAgent: new http.Agent({ lookup }) } });
        const vb = `vh-${run}`, vkey = "dir/ü x+1.json";
        const seen = [];
        vh.middlewareStack.add((next) => async (args) => {
            seen.push(args.request.hostname);
            return next(args);
        }, { step: "finalizeRequest", name: "recordHost" });
        await vh.send(new CreateBucketCommand({ Bucket: vb }));
        await vh.send(new PutObjectCommand({ Bucket: vb, Key: vkey, Body: "virtual" }));
        const got = await (await vh.send(new GetObjectCommand({ Bucket: vb, Key: vkey })))
            .Body.transformToString();
        eq(got, "virtual", "body");
        eq((await vh.send(new ListObjectsV2Command({ Bucket: vb }))).Contents.map((c) => c.Key),
            [vkey], "listed");
        // The same object through the path-style client: one store, two addressings.
        eq(await (await s3.send(new GetObjectCommand({ Bucket: vb, Key: vkey })))
            .Body.transformToString(), "virtual", "path-style view");
        eq([...new Set(seen)], [`${vb}.s3.localhost.localstack.cloud`], "hosts used");
    });

    const wrong = { accessKeyId: "test", secretAccessKey: "wrong" };
    await check("a wrong secret: SignatureDoesNotMatch from S3, SQS and CloudWatch", async () => {
        // A HEAD answer has no body to name the error: the SDK calls it Unknown, as with S3.
        const h = await rejects(new S3Client({ ...cfg(wrong), forcePathStyle: true }).send(
            new HeadObjectCommand({ Bucket: bucket, Key: key })), "Unknown");
        eq(h.$metadata.httpStatusCode, 403, "HEAD status");
        await rejects(new S3Client({ ...cfg(wrong), forcePathStyle: true }).send(
            new GetObjectCommand({ Bucket: bucket, Key: key })), "SignatureDoesNotMatch");
        await rejects(new SQSClient(cfg(wrong)).send(new GetQueueAttributesCommand({
            QueueUrl: queueUrl, AttributeNames: ["All"] })), "SignatureDoesNotMatch");
        await rejects(new CloudWatchClient(cfg(wrong)).send(new PutMetricDataCommand({
            Namespace: ns, MetricData: [{ MetricName: "X", Value: 1 }] })), "SignatureDoesNotMatch");
    });
    await check("S3 DeleteObject", async () => {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        await rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), "NotFound");
    });
    await sleep(0);
    process.exit(failed);
}
main().catch((e) => {
    console.log(`not ok - sdk_peer crashed: ${e.stack || e}`);
    process.exit(1);
});
