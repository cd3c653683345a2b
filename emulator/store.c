/* store.c: persistence for --data DIR. Object bodies are files under DIR/objects (written
 * before the object becomes visible); everything else is one JSON snapshot, DIR/state.json,
 * written atomically (temp file, fsync, rename) by a saver thread soon after each change and
 * once more at shutdown. Loading drops body files no snapshot refers to. */
#include "emulator/emu_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SNAPSHOT_MAX (1024u * 1024 * 1024)

void bm__emu_dirty(struct bm_emu *emu)
{
    emu->dirty = true;
    if (emu->saver_running)
        pthread_cond_signal(&emu->saver_cv);
}

static bm_err write_file(const char *path, const char *data, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return BM_E_IO;
    bm_err rc = BM_OK;
    for (size_t off = 0; off < len && rc == BM_OK;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = BM_E_IO;
        else
            off += (size_t)n;
    }
    if (rc == BM_OK && fsync(fd) != 0)
        rc = BM_E_IO;
    if (close(fd) != 0)
        rc = BM_E_IO;
    if (rc == BM_OK && rename(tmp, path) != 0)
        rc = BM_E_IO;
    if (rc != BM_OK)
        unlink(tmp);
    return rc;
}

static void obj_path(const struct bm_emu *emu, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/objects/%s", emu->data_dir, name);
}

bm_err bm__emu_store_put_body(struct bm_emu *emu, const char *data, size_t len, char **name)
{
    *name = NULL;
    if (emu->data_dir == NULL)
        return BM_OK;
    char n[64], path[4200];
    pthread_mutex_lock(&emu->mu);
    snprintf(n, sizeof n, "o%llu-%016llx", (unsigned long long)++emu->next_id,
             (unsigned long long)bm__emu_rand(emu));
    pthread_mutex_unlock(&emu->mu);
    obj_path(emu, n, path, sizeof path);
    bm_err rc = write_file(path, data, len);
    if (rc != BM_OK) {
        BM_LOG(BM_ERROR, "emu", "store_body_failed", "cannot write an object body",
               BM_KV_STR("path", path));
        return rc;
    }
    *name = bm_strdup(n);
    if (*name == NULL) {
        unlink(path);
        return BM_E_NOMEM;
    }
    return BM_OK;
}

void bm__emu_store_drop_body(struct bm_emu *emu, const char *name)
{
    char path[4200];
    if (emu->data_dir == NULL || name == NULL)
        return;
    obj_path(emu, name, path, sizeof path);
    unlink(path);
}

/* ---- snapshot ------------------------------------------------------------------------- */
static cJSON *add_obj(cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    if (o != NULL && !cJSON_AddItemToArray(arr, o))
        return NULL;
    return o;
}

static void add_opt_str(cJSON *o, const char *k, const char *v)
{
    if (v != NULL)
        cJSON_AddStringToObject(o, k, v);
}

/* Keys may hold any byte: kept percent-encoded so the JSON stays valid UTF-8. */
static bool add_key(cJSON *o, const char *key, size_t len)
{
    struct bm_buf b;
    bm_buf_init(&b, 64 * 1024);
    bool ok = bm_url_encode(key, len, "/", false, &b) == BM_OK &&
              cJSON_AddStringToObject(o, "key", b.data ? b.data : "") != NULL;
    bm_buf_cleanup(&b);
    return ok;
}

static bool snap_buckets(const struct bm_emu *emu, cJSON *root)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "buckets");
    for (size_t i = 0; arr != NULL && i < emu->n_buckets; i++) {
        const struct emu_bucket *b = emu->buckets[i];
        cJSON *bo = add_obj(arr), *confs, *objs;
        if (bo == NULL || !cJSON_AddStringToObject(bo, "name", b->name) ||
            !cJSON_AddStringToObject(bo, "region", b->region) ||
            !cJSON_AddNumberToObject(bo, "created_ms", (double)b->created_ms) ||
            !cJSON_AddNumberToObject(bo, "sequencer", (double)b->sequencer) ||
            (confs = cJSON_AddArrayToObject(bo, "qconf")) == NULL ||
            (objs = cJSON_AddArrayToObject(bo, "objects")) == NULL)
            return false;
        for (size_t j = 0; j < b->n_qconf; j++) {
            const struct emu_qconf *c = &b->qconf[j];
            cJSON *co = add_obj(confs);
            cJSON *ev =
                co ? cJSON_CreateStringArray((const char *const *)c->events, (int)c->n_events)
                   : NULL;
            if (ev == NULL || !cJSON_AddItemToObject(co, "events", ev))
                return false;
            add_opt_str(co, "id", c->id);
            add_opt_str(co, "queue_arn", c->queue_arn);
            add_opt_str(co, "prefix", c->prefix);
            add_opt_str(co, "suffix", c->suffix);
        }
        for (size_t j = 0; j < b->n_objs; j++) {
            const struct emu_object *o = b->objs[j];
            cJSON *oo = add_obj(objs), *meta;
            if (oo == NULL || !add_key(oo, o->key, o->key_len) ||
                !cJSON_AddNumberToObject(oo, "size", (double)o->len) ||
                !cJSON_AddStringToObject(oo, "etag", o->etag) ||
                !cJSON_AddNumberToObject(oo, "mtime_ms", (double)o->mtime_ms) ||
                (meta = cJSON_AddObjectToObject(oo, "meta")) == NULL)
                return false;
            add_opt_str(oo, "file", o->file);
            add_opt_str(oo, "content_type", o->content_type);
            add_opt_str(oo, "content_encoding", o->content_encoding);
            add_opt_str(oo, "cache_control", o->cache_control);
            add_opt_str(oo, "content_disposition", o->content_disposition);
            for (size_t k = 0; k < o->n_meta; k++)
                cJSON_AddStringToObject(meta, o->meta[k].k, o->meta[k].v);
        }
    }
    return arr != NULL;
}

static bool snap_queues(const struct bm_emu *emu, cJSON *root)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "queues");
    for (size_t i = 0; arr != NULL && i < emu->n_queues; i++) {
        const struct emu_queue *q = emu->queues[i];
        cJSON *qo = add_obj(arr), *msgs;
        const struct {
            const char *k;
            double v;
        } nums[] = {
            {"visibility_s", (double)q->visibility_s}, {"delay_s", (double)q->delay_s},
            {"retention_s", (double)q->retention_s},   {"wait_s", (double)q->wait_s},
            {"max_size", (double)q->max_size},         {"max_receive", (double)q->max_receive},
            {"created_s", (double)q->created_s},       {"modified_s", (double)q->modified_s}};
        if (qo == NULL || !cJSON_AddStringToObject(qo, "name", q->name) ||
            (msgs = cJSON_AddArrayToObject(qo, "messages")) == NULL)
            return false;
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
            cJSON_AddNumberToObject(qo, nums[k].k, nums[k].v);
        add_opt_str(qo, "redrive", q->redrive);
        add_opt_str(qo, "dlq_name", q->dlq_name);
        for (const struct emu_msg *m = q->head; m != NULL; m = m->next) {
            cJSON *mo = add_obj(msgs);
            if (mo == NULL || !cJSON_AddStringToObject(mo, "id", m->id) ||
                !cJSON_AddStringToObject(mo, "body", m->body) ||
                !cJSON_AddStringToObject(mo, "receipt", m->receipt))
                return false;
            add_opt_str(mo, "attrs", m->attrs_json);
            add_opt_str(mo, "attrs_md5", m->attrs_json ? m->attrs_md5 : NULL);
            cJSON_AddNumberToObject(mo, "sent_ms", (double)m->sent_ms);
            cJSON_AddNumberToObject(mo, "first_recv_ms", (double)m->first_recv_ms);
            cJSON_AddNumberToObject(mo, "visible_ms", (double)m->visible_ms);
            cJSON_AddNumberToObject(mo, "recv_count", (double)m->recv_count);
        }
    }
    return arr != NULL;
}

static bool snap_metrics(const struct bm_emu *emu, cJSON *root)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "metrics");
    for (size_t i = 0; arr != NULL && i < emu->n_series; i++) {
        const struct emu_series *s = emu->series[i];
        cJSON *so = add_obj(arr), *dims, *pts;
        if (so == NULL || !cJSON_AddStringToObject(so, "ns", s->ns) ||
            !cJSON_AddStringToObject(so, "name", s->name) ||
            (dims = cJSON_AddObjectToObject(so, "dims")) == NULL ||
            (pts = cJSON_AddArrayToObject(so, "points")) == NULL)
            return false;
        for (size_t k = 0; k < s->n_dims; k++)
            cJSON_AddStringToObject(dims, s->dims[k].k, s->dims[k].v);
        for (size_t k = 0; k < s->n_pts; k++) {
            const struct emu_point *p = &s->pts[k];
            double v[] = {(double)p->ts, p->sum, p->count, p->min, p->max, (double)p->unit};
            cJSON *pa = cJSON_CreateDoubleArray(v, 6);
            if (pa == NULL || !cJSON_AddItemToArray(pts, pa))
                return false;
        }
    }
    return arr != NULL;
}

bm_err bm__emu_store_save(struct bm_emu *emu)
{
    if (emu->data_dir == NULL)
        return BM_OK;
    cJSON *root = cJSON_CreateObject();
    pthread_mutex_lock(&emu->mu);
    bool ok = root != NULL && cJSON_AddNumberToObject(root, "version", 1) &&
              cJSON_AddNumberToObject(root, "next_id", (double)emu->next_id) &&
              snap_buckets(emu, root) && snap_queues(emu, root) && snap_metrics(emu, root) &&
              cJSON_AddItemToObject(root, "dashboards", cJSON_Duplicate(emu->cw_dashboards, 1)) &&
              cJSON_AddItemToObject(root, "alarms", cJSON_Duplicate(emu->cw_alarms, 1));
    if (ok)
        emu->dirty = false;
    pthread_mutex_unlock(&emu->mu);
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (text == NULL)
        return BM_E_NOMEM;
    char path[4200];
    snprintf(path, sizeof path, "%s/state.json", emu->data_dir);
    bm_err rc = write_file(path, text, strlen(text));
    cJSON_free(text);
    if (rc != BM_OK) {
        BM_LOG(BM_ERROR, "emu", "store_save_failed", "cannot write the state snapshot",
               BM_KV_STR("path", path));
        pthread_mutex_lock(&emu->mu);
        emu->dirty = true; /* try again later */
        pthread_mutex_unlock(&emu->mu);
    }
    return rc;
}

/* ---- load ----------------------------------------------------------------------------- */
static char *dup_opt(const cJSON *o, const char *k, bool *oom)
{
    const char *v = bm__emu_in_str(o, k);
    char *d = v ? bm_strdup(v) : NULL;
    if (v != NULL && d == NULL)
        *oom = true;
    return d;
}

static int64_t num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static bm_err read_body(const struct bm_emu *emu, const char *file, size_t len, char **out)
{
    char path[4200];
    obj_path(emu, file, path, sizeof path);
    FILE *f = fopen(path, "rb");
    char *data = bm_malloc(len + 1);
    bm_err rc = f && data ? BM_OK : (data ? BM_E_IO : BM_E_NOMEM);
    if (rc == BM_OK && len > 0 && fread(data, 1, len, f) != len)
        rc = BM_E_IO;
    if (f)
        fclose(f);
    if (rc != BM_OK) {
        bm_free(data);
        return rc;
    }
    data[len] = '\0';
    *out = data;
    return BM_OK;
}

/* An MD5 in hex, or a multipart ETag: that followed by "-" and the number of parts. */
static bool etag_ok(const char *etag)
{
    size_t n = etag ? strlen(etag) : 0;
    if (n < BM_MD5_HEX_LEN || n >= EMU_ETAG_MAX ||
        strspn(etag, "0123456789abcdef") != BM_MD5_HEX_LEN)
        return false;
    return n == BM_MD5_HEX_LEN ||
           (etag[BM_MD5_HEX_LEN] == '-' && n > BM_MD5_HEX_LEN + 1 &&
            strspn(etag + BM_MD5_HEX_LEN + 1, "0123456789") == n - BM_MD5_HEX_LEN - 1);
}

static bm_err load_object(struct bm_emu *emu, struct emu_bucket *b, const cJSON *oo)
{
    struct emu_object *o = bm_calloc(1, sizeof *o);
    struct bm_buf key;
    bool oom = false;
    bm_err rc = o ? BM_OK : BM_E_NOMEM;
    const char *k = bm__emu_in_str(oo, "key"), *etag = bm__emu_in_str(oo, "etag");
    bm_buf_init(&key, 64 * 1024);
    if (rc == BM_OK &&
        (k == NULL || !etag_ok(etag) || bm_url_decode(k, strlen(k), false, &key) != BM_OK))
        rc = BM_E_CONFIG;
    if (rc == BM_OK) {
        o->key_len = key.len;
        o->key = key.data ? bm_buf_steal(&key) : bm_strdup("");
        memcpy(o->etag, etag, strlen(etag) + 1); /* etag_ok bounded its length */
        o->len = (size_t)num(oo, "size");
        o->mtime_ms = num(oo, "mtime_ms");
        o->file = dup_opt(oo, "file", &oom);
        o->content_type = dup_opt(oo, "content_type", &oom);
        o->content_encoding = dup_opt(oo, "content_encoding", &oom);
        o->cache_control = dup_opt(oo, "cache_control", &oom);
        o->content_disposition = dup_opt(oo, "content_disposition", &oom);
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(oo, "meta"), *m;
        int nm = cJSON_GetArraySize(meta);
        o->meta = nm > 0 ? bm_calloc((size_t)nm, sizeof *o->meta) : NULL;
        oom = oom || o->key == NULL || (nm > 0 && o->meta == NULL);
        cJSON_ArrayForEach(m, meta)
        {
            if (oom || !cJSON_IsString(m))
                continue;
            o->meta[o->n_meta].k = bm_strdup(m->string);
            o->meta[o->n_meta].v = bm_strdup(m->valuestring);
            oom = o->meta[o->n_meta].k == NULL || o->meta[o->n_meta].v == NULL;
            o->n_meta++;
        }
        rc = oom ? BM_E_NOMEM : o->file ? read_body(emu, o->file, o->len, &o->data) : BM_E_CONFIG;
    }
    if (rc == BM_E_IO) {
        /* A body deleted after the last snapshot was written (a crash in between): the object
         * was being deleted or replaced, so dropping it is the state the client last saw. */
        BM_LOG(BM_WARN, "emu", "store_body_missing", "dropping an object whose body is gone",
               BM_KV_STR("bucket", b->name), BM_KV_STR("file", o->file));
        bm__emu_object_free(o);
        bm_buf_cleanup(&key);
        return BM_OK;
    }
    if (rc == BM_OK)
        rc = bm__emu_grow(&b->objs, &b->cap_objs, b->n_objs + 1, sizeof *b->objs);
    if (rc == BM_OK)
        b->objs[b->n_objs++] = o; /* the snapshot lists them in key order */
    else
        bm__emu_object_free(o);
    bm_buf_cleanup(&key);
    return rc;
}

static bm_err load_buckets(struct bm_emu *emu, const cJSON *arr)
{
    const cJSON *bo;
    bm_err rc = BM_OK;
    cJSON_ArrayForEach(bo, arr)
    {
        struct emu_bucket *b = bm_calloc(1, sizeof *b);
        bool oom = false;
        if (b == NULL || (b->name = dup_opt(bo, "name", &oom)) == NULL ||
            (rc = bm__emu_grow(&emu->buckets, &emu->cap_buckets, emu->n_buckets + 1,
                               sizeof *emu->buckets)) != BM_OK) {
            bm__emu_bucket_free(b);
            return rc != BM_OK ? rc : (oom || b == NULL ? BM_E_NOMEM : BM_E_CONFIG);
        }
        emu->buckets[emu->n_buckets++] = b;
        b->created_ms = num(bo, "created_ms");
        const cJSON *reg = cJSON_GetObjectItemCaseSensitive(bo, "region");
        if (cJSON_IsString(reg) && bm_region_valid(reg->valuestring))
            snprintf(b->region, sizeof b->region, "%s", reg->valuestring);
        b->sequencer = (uint64_t)num(bo, "sequencer");
        const cJSON *confs = cJSON_GetObjectItemCaseSensitive(bo, "qconf"), *co;
        int nc = cJSON_GetArraySize(confs);
        if (nc > 0 && (b->qconf = bm_calloc((size_t)nc, sizeof *b->qconf)) == NULL)
            return BM_E_NOMEM;
        cJSON_ArrayForEach(co, confs)
        {
            struct emu_qconf *c = &b->qconf[b->n_qconf++];
            const cJSON *ev = cJSON_GetObjectItemCaseSensitive(co, "events"), *e;
            c->id = dup_opt(co, "id", &oom);
            c->queue_arn = dup_opt(co, "queue_arn", &oom);
            c->prefix = dup_opt(co, "prefix", &oom);
            c->suffix = dup_opt(co, "suffix", &oom);
            int ne = cJSON_GetArraySize(ev);
            if (ne > 0 && (c->events = bm_calloc((size_t)ne, sizeof *c->events)) == NULL)
                return BM_E_NOMEM;
            cJSON_ArrayForEach(e, ev)
            {
                if (cJSON_IsString(e) &&
                    (c->events[c->n_events++] = bm_strdup(e->valuestring)) == NULL)
                    oom = true;
            }
            if (oom || c->id == NULL || c->queue_arn == NULL)
                return oom ? BM_E_NOMEM : BM_E_CONFIG;
        }
        const cJSON *oo;
        cJSON_ArrayForEach(oo, cJSON_GetObjectItemCaseSensitive(bo, "objects"))
        {
            if ((rc = load_object(emu, b, oo)) != BM_OK)
                return rc;
        }
    }
    return BM_OK;
}

static bm_err load_queues(struct bm_emu *emu, const cJSON *arr)
{
    const cJSON *qo;
    cJSON_ArrayForEach(qo, arr)
    {
        struct emu_queue *q = bm_calloc(1, sizeof *q);
        bool oom = false;
        bm_err rc = BM_OK;
        if (q == NULL || (q->name = dup_opt(qo, "name", &oom)) == NULL ||
            (rc = bm__emu_grow(&emu->queues, &emu->cap_queues, emu->n_queues + 1,
                               sizeof *emu->queues)) != BM_OK) {
            bm__emu_queue_free(q);
            return rc != BM_OK ? rc : (oom || q == NULL ? BM_E_NOMEM : BM_E_CONFIG);
        }
        emu->queues[emu->n_queues++] = q;
        q->visibility_s = (long)num(qo, "visibility_s");
        q->delay_s = (long)num(qo, "delay_s");
        q->retention_s = (long)num(qo, "retention_s");
        q->wait_s = (long)num(qo, "wait_s");
        q->max_size = (long)num(qo, "max_size");
        q->max_receive = (long)num(qo, "max_receive");
        q->created_s = num(qo, "created_s");
        q->modified_s = num(qo, "modified_s");
        q->redrive = dup_opt(qo, "redrive", &oom);
        q->dlq_name = dup_opt(qo, "dlq_name", &oom);
        const cJSON *mo;
        cJSON_ArrayForEach(mo, cJSON_GetObjectItemCaseSensitive(qo, "messages"))
        {
            const char *id = bm__emu_in_str(mo, "id"), *body = bm__emu_in_str(mo, "body");
            const char *receipt = bm__emu_in_str(mo, "receipt");
            const char *amd5 = bm__emu_in_str(mo, "attrs_md5");
            if (id == NULL || body == NULL || strlen(id) != 36 || receipt == NULL ||
                strlen(receipt) >= sizeof q->head->receipt)
                return BM_E_CONFIG;
            if ((rc = bm__emu_queue_push(emu, q, body, strlen(body), num(mo, "sent_ms"))) != BM_OK)
                return rc;
            struct emu_msg *m = q->tail;
            memcpy(m->id, id, 37);
            memcpy(m->receipt, receipt, strlen(receipt) + 1);
            m->first_recv_ms = num(mo, "first_recv_ms");
            m->visible_ms = num(mo, "visible_ms");
            m->recv_count = (long)num(mo, "recv_count");
            m->attrs_json = dup_opt(mo, "attrs", &oom);
            if (amd5 != NULL && strlen(amd5) == BM_MD5_HEX_LEN)
                memcpy(m->attrs_md5, amd5, BM_MD5_HEX_LEN + 1);
        }
        if (oom)
            return BM_E_NOMEM;
    }
    return BM_OK;
}

/* Dashboards or alarms: kept as they were saved (an object keyed by name), absent = none. */
static bm_err load_cw_named(cJSON **dst, cJSON *root, const char *k)
{
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(root, k);
    if (v == NULL)
        return BM_OK;
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return BM_E_CONFIG;
    }
    cJSON_Delete(*dst);
    *dst = v;
    return BM_OK;
}

static bm_err load_metrics(struct bm_emu *emu, const cJSON *arr)
{
    const cJSON *so;
    cJSON_ArrayForEach(so, arr)
    {
        struct emu_series *s = bm_calloc(1, sizeof *s);
        bool oom = false;
        bm_err rc = BM_OK;
        if (s == NULL || (s->ns = dup_opt(so, "ns", &oom)) == NULL ||
            (s->name = dup_opt(so, "name", &oom)) == NULL ||
            (rc = bm__emu_grow(&emu->series, &emu->cap_series, emu->n_series + 1,
                               sizeof *emu->series)) != BM_OK) {
            bm__emu_series_free(s);
            return rc != BM_OK ? rc : (oom || s == NULL ? BM_E_NOMEM : BM_E_CONFIG);
        }
        emu->series[emu->n_series++] = s;
        const cJSON *dims = cJSON_GetObjectItemCaseSensitive(so, "dims"), *d;
        int nd = cJSON_GetArraySize(dims);
        if (nd > 0 && (s->dims = bm_calloc((size_t)nd, sizeof *s->dims)) == NULL)
            return BM_E_NOMEM;
        cJSON_ArrayForEach(d, dims)
        {
            if (!cJSON_IsString(d))
                return BM_E_CONFIG;
            s->dims[s->n_dims].k = bm_strdup(d->string);
            s->dims[s->n_dims].v = bm_strdup(d->valuestring);
            if (s->dims[s->n_dims++].v == NULL || s->dims[s->n_dims - 1].k == NULL)
                return BM_E_NOMEM;
        }
        const cJSON *pts = cJSON_GetObjectItemCaseSensitive(so, "points"), *p;
        int np = cJSON_GetArraySize(pts);
        if (np > 0 &&
            (rc = bm__emu_grow(&s->pts, &s->cap_pts, (size_t)np, sizeof *s->pts)) != BM_OK)
            return rc;
        cJSON_ArrayForEach(p, pts)
        {
            if (cJSON_GetArraySize(p) != 6)
                return BM_E_CONFIG;
            double v[6];
            for (int k = 0; k < 6; k++)
                v[k] = cJSON_GetArrayItem(p, k)->valuedouble;
            s->pts[s->n_pts++] =
                (struct emu_point){(int64_t)v[0], v[1], v[2], v[3], v[4], (int)v[5]};
        }
    }
    return BM_OK;
}

/* Removes body files that no object refers to (a crash between body and snapshot). */
static void drop_orphans(struct bm_emu *emu)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/objects", emu->data_dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        bool used = false;
        for (size_t i = 0; i < emu->n_buckets && !used; i++) {
            for (size_t j = 0; j < emu->buckets[i]->n_objs && !used; j++) {
                const char *f = emu->buckets[i]->objs[j]->file;
                used = f != NULL && strcmp(f, e->d_name) == 0;
            }
        }
        if (!used) {
            char path[4600];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d != NULL)
        closedir(d);
}

bm_err bm__emu_store_load(struct bm_emu *emu, struct bm_errmsg *em)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/objects", emu->data_dir);
    if ((mkdir(emu->data_dir, 0755) != 0 && errno != EEXIST) ||
        (mkdir(path, 0755) != 0 && errno != EEXIST))
        return bm_errmsg_set(em, BM_E_CONFIG, "--data %s: cannot create the folder: %s",
                             emu->data_dir, strerror(errno));
    snprintf(path, sizeof path, "%s/state.json", emu->data_dir);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT)
            return BM_OK; /* a fresh folder */
        return bm_errmsg_set(em, BM_E_CONFIG, "--data: cannot read %s: %s", path, strerror(errno));
    }
    struct bm_buf b;
    bm_buf_init(&b, SNAPSHOT_MAX);
    bm_err rc = bm_buf_append_stream(&b, f);
    fclose(f);
    cJSON *root = rc == BM_OK && b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
    bm_buf_cleanup(&b);
    if (rc == BM_OK && !cJSON_IsObject(root))
        rc = BM_E_CONFIG;
    if (rc == BM_OK) {
        emu->next_id = (uint64_t)num(root, "next_id");
        if ((rc = load_buckets(emu, cJSON_GetObjectItemCaseSensitive(root, "buckets"))) == BM_OK &&
            (rc = load_queues(emu, cJSON_GetObjectItemCaseSensitive(root, "queues"))) == BM_OK)
            rc = load_metrics(emu, cJSON_GetObjectItemCaseSensitive(root, "metrics"));
        rc = rc == BM_OK ? load_cw_named(&emu->cw_dashboards, root, "dashboards") : rc;
        rc = rc == BM_OK ? load_cw_named(&emu->cw_alarms, root, "alarms") : rc;
    }
    cJSON_Delete(root);
    if (rc != BM_OK)
        return bm_errmsg_set(em, rc == BM_E_NOMEM ? rc : BM_E_CONFIG,
                             "--data: %s or an object body under it is unreadable or corrupt",
                             path);
    drop_orphans(emu);
    emu->dirty = false;
    return BM_OK;
}

/* ---- saver thread --------------------------------------------------------------------- */
static void *saver_main(void *arg)
{
    struct bm_emu *emu = arg;
    pthread_mutex_lock(&emu->mu);
    while (emu->saver_running) {
        if (!emu->dirty) {
            pthread_cond_wait(&emu->saver_cv, &emu->mu);
            continue;
        }
        pthread_mutex_unlock(&emu->mu);
        bm__emu_store_save(emu);
        pthread_mutex_lock(&emu->mu);
        /* Coalesce bursts: at most about four snapshots a second. */
        struct timespec ts;
        bm_mono_deadline(250, &ts);
        if (emu->saver_running)
            pthread_cond_timedwait(&emu->saver_cv, &emu->mu, &ts);
    }
    pthread_mutex_unlock(&emu->mu);
    return NULL;
}

bm_err bm__emu_store_start(struct bm_emu *emu)
{
    if (emu->data_dir == NULL)
        return BM_OK;
    pthread_mutex_lock(&emu->mu);
    emu->saver_running = true;
    pthread_mutex_unlock(&emu->mu);
    if (pthread_create(&emu->saver, NULL, saver_main, emu) != 0) {
        emu->saver_running = false;
        return BM_E_INTERNAL;
    }
    return BM_OK;
}

void bm__emu_store_stop(struct bm_emu *emu)
{
    pthread_mutex_lock(&emu->mu);
    bool running = emu->saver_running;
    emu->saver_running = false;
    pthread_cond_signal(&emu->saver_cv);
    pthread_mutex_unlock(&emu->mu);
    if (running)
        pthread_join(emu->saver, NULL);
}
