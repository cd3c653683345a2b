/* Unit tests for emulator/wire.c and xml.c: Query forms to the JSON input shape, the dual
 * XML/JSON response writer, errors in each protocol's form, XML escaping and parsing. */
#include "tu.h"

#include "emulator/emu_int.h"

static void test_query_to_json(void **state)
{
    (void)state;
    static const struct {
        const char *form, *json;
    } cases[] = {
        {"Action=PutMetricData&Version=2010-08-01&Namespace=N%2FX"
         "&MetricData.member.1.MetricName=m&MetricData.member.1.Value=2.5"
         "&MetricData.member.1.Dimensions.member.2.Name=b&MetricData.member.1.Dimensions.member.1."
         "Name=a"
         "&MetricData.member.2.Values.member.1=1&MetricData.member.2.StatisticValues.Sum=3",
         "{\"Namespace\":\"N/X\",\"MetricData\":[{\"MetricName\":\"m\",\"Value\":\"2.5\","
         "\"Dimensions\":[{\"Name\":\"a\"},{\"Name\":\"b\"}]},{\"Values\":[\"1\"],"
         "\"StatisticValues\":{\"Sum\":\"3\"}}]}"},
        /* SQS flattens lists without "member". */
        {"Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5"
         "&AttributeName.1=All&MessageBody=a+b%2Bc",
         "{\"QueueName\":\"q\",\"Attribute\":[{\"Name\":\"VisibilityTimeout\",\"Value\":\"5\"}],"
         "\"AttributeName\":[\"All\"],\"MessageBody\":\"a b+c\"}"},
        {"", "{}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = NULL;
        assert_int_equal(bm__emu_query_to_json(cases[i].form, strlen(cases[i].form), &j), BM_OK);
        char *s = cJSON_PrintUnformatted(j);
        assert_string_equal(s, cases[i].json);
        cJSON_free(s);
        cJSON_Delete(j);
    }
    static const char *const bad[] = {"A.member=1", "A.member.0=1", "A.member.x=1", "a=%zz",
                                      "A..B=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = NULL;
        assert_int_equal(bm__emu_query_to_json(bad[i], strlen(bad[i]), &j), BM_E_BAD_REQUEST);
        assert_null(j);
    }
}

/* One small document through both writers. */
static void write_doc(struct emu_w *w)
{
    bm__emu_w_str(w, "Label", "a<b");
    bm__emu_w_list(w, "Datapoints", "Datapoints", "member");
    bm__emu_w_obj(w, NULL);
    bm__emu_w_time(w, "Timestamp", 1776643200000);
    bm__emu_w_num(w, "Sum", 0.1 + 0.2);
    bm__emu_w_end(w);
    bm__emu_w_end(w);
    bm__emu_w_map(w, "Attributes", "Attribute");
    bm__emu_w_map_str(w, "k", "v&");
    bm__emu_w_end(w);
    bm__emu_w_list(w, "Urls", NULL, "QueueUrl");
    bm__emu_w_str(w, NULL, "u1");
    bm__emu_w_int(w, NULL, 7);
    bm__emu_w_end(w);
}

static void test_writer(void **state)
{
    (void)state;
    struct bm_buf b;
    struct emu_w w;
    bm_buf_init(&b, 4096);
    bm__emu_w_begin(&w, EMU_PROTO_JSON, EMU_CW_NS, "Op", &b);
    write_doc(&w);
    assert_int_equal(bm__emu_w_finish(&w, "rid"), BM_OK);
    assert_string_equal(b.data, "{\"Label\":\"a<b\",\"Datapoints\":[{\"Timestamp\":1776643200,"
                                "\"Sum\":0.30000000000000004}],\"Attributes\":{\"k\":\"v&\"},"
                                "\"Urls\":[\"u1\",7]}");
    bm_buf_reset(&b);
    bm__emu_w_begin(&w, EMU_PROTO_QUERY, EMU_CW_NS, "Op", &b);
    write_doc(&w);
    assert_int_equal(bm__emu_w_finish(&w, "rid"), BM_OK);
    assert_string_equal(b.data,
                        "<?xml version=\"1.0\"?><OpResponse xmlns=\"" EMU_CW_NS "\"><OpResult>"
                        "<Label>a&lt;b</Label><Datapoints><member><Timestamp>2026-04-20T00:00:00Z"
                        "</Timestamp><Sum>0.30000000000000004</Sum></member></Datapoints>"
                        "<Attribute><Name>k</Name><Value>v&amp;</Value></Attribute>"
                        "<QueueUrl>u1</QueueUrl><QueueUrl>7</QueueUrl></OpResult>"
                        "<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata>"
                        "</OpResponse>");
    /* No output at all: no Result element; an empty output: an empty one. */
    bm_buf_reset(&b);
    bm__emu_w_begin(&w, EMU_PROTO_QUERY, EMU_SQS_NS, "DeleteMessage", &b);
    w.no_result = true;
    assert_int_equal(bm__emu_w_finish(&w, "r"), BM_OK);
    assert_null(strstr(b.data, "Result"));
    bm_buf_reset(&b);
    bm__emu_w_begin(&w, EMU_PROTO_QUERY, EMU_SQS_NS, "ReceiveMessage", &b);
    assert_int_equal(bm__emu_w_finish(&w, "r"), BM_OK);
    assert_non_null(strstr(b.data, "<ReceiveMessageResult></ReceiveMessageResult>"));
    bm_buf_cleanup(&b);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        enum emu_svc svc;
        enum emu_proto proto;
        const char *code;
        int status;
        const char *body, *header;
    } cases[] = {
        {EMU_SVC_SQS, EMU_PROTO_JSON, "QueueDoesNotExist", 400,
         "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"m\"}",
         "AWS.SimpleQueueService.NonExistentQueue;Sender"},
        {EMU_SVC_SQS, EMU_PROTO_QUERY, "QueueDoesNotExist", 400,
         "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"" EMU_SQS_NS "\"><Error><Type>Sender"
         "</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>m</Message>"
         "<Detail/></Error><RequestId>rid</RequestId></ErrorResponse>",
         NULL},
        {EMU_SVC_CW, EMU_PROTO_JSON, "InvalidParameterValue", 400,
         "{\"__type\":\"com.amazonaws.cloudwatch#InvalidParameterValueException\","
         "\"message\":\"m\"}",
         "InvalidParameterValue;Sender"},
        {EMU_SVC_CW, EMU_PROTO_QUERY, "SignatureDoesNotMatch", 403,
         "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"" EMU_CW_NS "\"><Error><Type>Sender"
         "</Type><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error>"
         "<RequestId>rid</RequestId></ErrorResponse>",
         NULL},
        {EMU_SVC_S3, EMU_PROTO_REST, "NoSuchKey", 404,
         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>m"
         "</Message><Key>a&amp;b</Key><RequestId>rid</RequestId><HostId>rid</HostId></Error>",
         NULL},
        /* A code outside the table (a fault rule's) keeps its own status and name. */
        {EMU_SVC_CW, EMU_PROTO_JSON, "Throttling", 400,
         "{\"__type\":\"Throttling\",\"message\":\"m\"}", "Throttling;Sender"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct emu_req rq = {.method = "GET", .svc = cases[i].svc, .proto = cases[i].proto};
        struct emu_resp rs = {.status = 200};
        bm_buf_init(&rs.body, 4096);
        snprintf(rq.req_id, sizeof rq.req_id, "rid");
        assert_int_equal(bm__emu_fail(&rq, cases[i].code, "%s", "m"), BM_E_BAD_REQUEST);
        if (cases[i].svc == EMU_SVC_S3) {
            snprintf(rq.err.res_name, sizeof rq.err.res_name, "Key");
            snprintf(rq.err.res_value, sizeof rq.err.res_value, "a&b");
        }
        assert_int_equal(bm__emu_render_error(&rq, &rs), BM_OK);
        assert_int_equal(rs.status, cases[i].status);
        assert_string_equal(rs.body.data, cases[i].body);
        if (cases[i].header != NULL) {
            assert_int_equal(rs.n_h, 1);
            assert_string_equal(rs.hname[0], "x-amzn-query-error");
            assert_string_equal(rs.hvalue[0], cases[i].header);
        }
        for (size_t k = 0; k < rs.n_h; k++) {
            bm_free(rs.hname[k]);
            bm_free(rs.hvalue[k]);
        }
        bm_buf_cleanup(&rs.body);
    }
}

static void test_xml(void **state)
{
    (void)state;
    struct bm_buf b;
    bm_buf_init(&b, 1024);
    assert_int_equal(bm__emu_xml_escape(&b, "<a href='x'>&\"\r\x01\tok", 19), BM_OK);
    assert_string_equal(b.data, "&lt;a href=&apos;x&apos;&gt;&amp;&quot;&#xD;&#x1;\tok");
    bm_buf_cleanup(&b);

    const char *doc =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->"
        "<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<QueueConfiguration><Id> a&amp;b&#x20AC; </Id><Event>e1</Event>"
        "<Event><![CDATA[<e2>]]></Event><Empty/></QueueConfiguration>"
        "</NotificationConfiguration>\n";
    struct emu_xml *x = NULL;
    assert_int_equal(bm__emu_xml_parse(doc, strlen(doc), &x), BM_OK);
    assert_string_equal(x->name, "NotificationConfiguration");
    struct emu_xml *q = bm__emu_xml_child(x, "QueueConfiguration");
    assert_non_null(q);
    assert_string_equal(bm__emu_xml_child(q, "Id")->text, "a&b\xE2\x82\xAC");
    assert_string_equal(q->child->next->text, "e1");
    assert_string_equal(q->child->next->next->text, "<e2>");
    assert_string_equal(bm__emu_xml_child(q, "Empty")->text, "");
    assert_null(bm__emu_xml_child(q, "Nope"));
    bm__emu_xml_free(x);
    static const char *const bad[] = {"",         "<a>",
                                      "<a></b>",  "<a>&bogus;</a>",
                                      "<a/><b/>", "<!DOCTYPE a [<!ENTITY x \"y\">]><a/>",
                                      "text"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        x = NULL;
        assert_int_equal(bm__emu_xml_parse(bad[i], strlen(bad[i]), &x), BM_E_BAD_REQUEST);
        assert_null(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_to_json),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_xml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
