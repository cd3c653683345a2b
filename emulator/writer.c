/* writer.c: the dual response writer. Handlers describe an answer once (members, lists, maps)
 * and it comes out as Query XML (<ActionResponse><ActionResult>...) or as a JSON 1.0 object,
 * whichever protocol the request spoke. */
#include "emulator/emu_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the dual writer ------------------------------------------------------------------ */
static void w_put(struct emu_w *w, const char *s)
{
    if (w->rc == BM_OK)
        w->rc = bm_buf_append_str(w->b, s);
}

/* Appends pre, name and post ("<" name ">"): element names are ours, never escaped. */
static void w_tag(struct emu_w *w, const char *pre, const char *name, const char *post)
{
    w_put(w, pre);
    w_put(w, name);
    w_put(w, post);
}

static void w_esc(struct emu_w *w, const char *s, size_t len)
{
    if (w->rc != BM_OK)
        return;
    w->rc = w->proto == EMU_PROTO_JSON ? bm_buf_append_json_str(w->b, s, len)
                                       : bm__emu_xml_escape(w->b, s, len);
}

/* Opens a member: returns the XML element name to close, or NULL for JSON. */
static const char *w_open(struct emu_w *w, const char *name)
{
    char kind = w->depth > 0 ? w->st[w->depth - 1].kind : 'o';
    if (w->proto == EMU_PROTO_JSON) {
        if (w->depth > 0 && !w->st[w->depth - 1].first)
            w_put(w, ",");
        if (w->depth > 0)
            w->st[w->depth - 1].first = false;
        if (kind != 'l' && name != NULL) {
            w_esc(w, name, strlen(name));
            w_put(w, ":");
        }
        return NULL;
    }
    if (!w->result_open) {
        w_tag(w, "<", w->action, "Result>");
        w->result_open = true;
    }
    const char *el = kind == 'l' ? w->st[w->depth - 1].xml_item : name;
    w_tag(w, "<", el, ">");
    return el;
}

static void w_close(struct emu_w *w, const char *el)
{
    if (el != NULL)
        w_tag(w, "</", el, ">");
}

void bm__emu_w_begin(struct emu_w *w, enum emu_proto proto, const char *ns, const char *action,
                     struct bm_buf *b)
{
    memset(w, 0, sizeof *w);
    w->proto = proto;
    w->b = b;
    w->action = action;
    if (proto == EMU_PROTO_JSON) {
        w_put(w, "{");
        w->st[0].kind = 'o';
        w->st[0].first = true;
        w->depth = 1;
    } else {
        w_put(w, "<?xml version=\"1.0\"?>");
        if (w->rc == BM_OK)
            w->rc = bm_buf_appendf(b, "<%sResponse xmlns=\"%s\">", action, ns);
    }
}

void bm__emu_w_strn(struct emu_w *w, const char *name, const char *s, size_t len)
{
    const char *el = w_open(w, name);
    w_esc(w, s, len);
    w_close(w, el);
}

void bm__emu_w_str(struct emu_w *w, const char *name, const char *s)
{
    bm__emu_w_strn(w, name, s, strlen(s));
}

static void fmt_double(double v, char out[32])
{
    /* The shortest text that reads back as the same double (%.15g, else %.17g). */
    snprintf(out, 32, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, 32, "%.17g", v);
}

void bm__emu_w_num(struct emu_w *w, const char *name, double v)
{
    char num[32];
    fmt_double(v, num);
    const char *el = w_open(w, name);
    w_put(w, num);
    w_close(w, el);
}

void bm__emu_w_int(struct emu_w *w, const char *name, long long v)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", v);
    const char *el = w_open(w, name);
    w_put(w, num);
    w_close(w, el);
}

void bm__emu_w_bool(struct emu_w *w, const char *name, bool v)
{
    const char *el = w_open(w, name);
    w_put(w, v ? "true" : "false");
    w_close(w, el);
}

void bm__emu_w_time(struct emu_w *w, const char *name, int64_t ms)
{
    char t[32];
    if (w->proto == EMU_PROTO_JSON) {
        if (ms % 1000 == 0)
            snprintf(t, sizeof t, "%lld", (long long)(ms / 1000));
        else
            fmt_double((double)ms / 1000.0, t);
    } else {
        bm_time_format(ms / 1000, t);
    }
    const char *el = w_open(w, name);
    w_put(w, t);
    w_close(w, el);
}

static void w_push(struct emu_w *w, char kind, const char *xml_name, const char *xml_item)
{
    if (w->depth == (int)(sizeof w->st / sizeof w->st[0])) {
        w->rc = BM_E_INTERNAL;
        return;
    }
    w->st[w->depth].kind = kind;
    w->st[w->depth].first = true;
    w->st[w->depth].xml_name = xml_name;
    w->st[w->depth].xml_item = xml_item;
    w->depth++;
}

void bm__emu_w_obj(struct emu_w *w, const char *name)
{
    const char *el = w_open(w, name);
    if (w->proto == EMU_PROTO_JSON)
        w_put(w, "{");
    w_push(w, 'o', el, NULL);
}

void bm__emu_w_list(struct emu_w *w, const char *json_name, const char *xml_name,
                    const char *xml_item)
{
    if (w->proto == EMU_PROTO_JSON) {
        w_open(w, json_name);
        w_put(w, "[");
        w_push(w, 'l', NULL, NULL);
        return;
    }
    const char *el = xml_name ? w_open(w, xml_name) : NULL;
    if (xml_name == NULL && !w->result_open) {
        w_tag(w, "<", w->action, "Result>");
        w->result_open = true;
    }
    w_push(w, 'l', el, xml_item);
}

void bm__emu_w_map(struct emu_w *w, const char *json_name, const char *xml_item)
{
    if (w->proto == EMU_PROTO_JSON) {
        w_open(w, json_name);
        w_put(w, "{");
    } else if (!w->result_open) {
        w_tag(w, "<", w->action, "Result>");
        w->result_open = true;
    }
    w_push(w, 'm', NULL, xml_item);
}

static void map_key(struct emu_w *w, const char *key)
{
    if (w->proto == EMU_PROTO_JSON) {
        w_open(w, key);
        return;
    }
    w_tag(w, "<", w->st[w->depth - 1].xml_item, "><Name>");
    w_esc(w, key, strlen(key));
    w_put(w, "</Name><Value>");
}

void bm__emu_w_map_str(struct emu_w *w, const char *key, const char *value)
{
    map_key(w, key);
    w_esc(w, value, strlen(value));
    if (w->proto != EMU_PROTO_JSON)
        w_tag(w, "</Value></", w->st[w->depth - 1].xml_item, ">");
}

void bm__emu_w_map_obj(struct emu_w *w, const char *key)
{
    map_key(w, key);
    if (w->proto == EMU_PROTO_JSON)
        w_put(w, "{");
    w_push(w, 'e', NULL, w->st[w->depth - 1].xml_item);
}

void bm__emu_w_end(struct emu_w *w)
{
    if (w->depth <= (w->proto == EMU_PROTO_JSON ? 1 : 0)) {
        w->rc = BM_E_INTERNAL;
        return;
    }
    w->depth--;
    char kind = w->st[w->depth].kind;
    if (w->proto == EMU_PROTO_JSON) {
        w_put(w, kind == 'l' ? "]" : "}");
    } else if (kind == 'e') {
        w_tag(w, "</Value></", w->st[w->depth].xml_item, ">");
    } else {
        w_close(w, w->st[w->depth].xml_name);
    }
}

bm_err bm__emu_w_finish(struct emu_w *w, const char *req_id)
{
    int floor_depth = w->proto == EMU_PROTO_JSON ? 1 : 0;
    while (w->depth > floor_depth && w->rc == BM_OK)
        bm__emu_w_end(w);
    if (w->proto == EMU_PROTO_JSON) {
        w_put(w, "}");
        return w->rc;
    }
    /* botocore expects <ActionResult/> even when empty (an empty ReceiveMessage). */
    if (!w->result_open && !w->no_result)
        w_tag(w, "<", w->action, "Result>");
    if (w->result_open || !w->no_result)
        w_tag(w, "</", w->action, "Result>");
    w_tag(w, "<ResponseMetadata><RequestId>", req_id, "</RequestId></ResponseMetadata>");
    w_tag(w, "</", w->action, "Response>");
    return w->rc;
}
