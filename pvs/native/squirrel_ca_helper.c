/* Channel Access callbacks in C for pvs.epics_io.ChannelSet, loaded with ctypes.
 *
 * At start-up the monitor connects and subscribes 50,000-86,000 channels. With a Python callback
 * per connection and per value, and Python subscribing each channel, a process spent ~2.5 s of
 * Python per 50,000 channels while libca (non-preemptive) could not read its sockets; the same
 * work in C takes ~0.9 s, as fast as a client written in C (docs/benchmarks.md, PV monitor).
 *
 * Here the callbacks only copy what libca hands them into one growing buffer of records, and
 * subscribe a channel when it connects; Python takes the buffer in one call (sq_drain) and
 * decodes the records. libca is not linked: the functions come from Python as pointers into the
 * libca that pyepics loaded, so there is exactly one libca and one CA context in the process.
 * Nothing here includes Python.h.
 *
 * Thread safety: with a non-preemptive context every callback runs inside ca_pend_event, in the
 * thread that polls; a process whose context is preemptive (pyepics' default) runs them on libca's
 * threads, so the record buffer and the metadata backlog are guarded by a mutex.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* libca's ABI (cadef.h, db_access.h), declared here so that no EPICS headers are needed. */
typedef void *sq_chid;
struct sq_connection_args { sq_chid chid; long op; };
struct sq_event_args { void *usr; sq_chid chid; long type; long count; const void *dbr; int status; };
typedef void (*sq_connection_cb)(struct sq_connection_args);
typedef void (*sq_event_cb)(struct sq_event_args);

enum { ECA_NORMAL = 1, CA_OP_CONN_UP = 6, DBR_TIME_OFFSET = 14, DBR_CTRL_OFFSET = 28, LAST_NATIVE = 6 };

/* The libca functions and tables this file calls, filled in by Python (pvs/epics_bulk.py). */
typedef struct {
    int (*create_channel)(const char *, sq_connection_cb, void *, unsigned, sq_chid *);
    int (*clear_channel)(sq_chid);
    int (*create_subscription)(long, unsigned long, sq_chid, long, sq_event_cb, void *, void **);
    int (*clear_subscription)(void *);
    int (*array_get_callback)(long, unsigned long, sq_chid, sq_event_cb, void *);
    short (*field_type)(sq_chid);
    unsigned long (*element_count)(sq_chid);
    void *(*puser)(sq_chid);
    int (*flush_io)(void);
    const unsigned short *dbr_size;
    const unsigned short *dbr_value_size;
} sq_ca_api;

/* Records, as Python reads them (struct "<BIiII" then `size` bytes). */
enum { REC_CONNECTED = 1, REC_DISCONNECTED = 2, REC_VALUE = 3, REC_METADATA = 4 };
#pragma pack(push, 1)
typedef struct {
    uint8_t kind;
    uint32_t index;
    int32_t type;   /* connected: native type; value, metadata: DBR type (-1: no DBR_CTRL form) */
    uint32_t count; /* connected: element count; value: elements in the buffer */
    uint32_t size;  /* bytes that follow */
} sq_record;
#pragma pack(pop)

typedef struct sq_set sq_set;

typedef struct {
    sq_set *set;
    uint32_t index;
    sq_chid chid;
    void *evid;
    short native;
    int connected;
} sq_channel;

struct sq_set {
    sq_ca_api ca;
    int subscribe;
    long mask;
    pthread_mutex_t lock;
    char *buffer, *handed; /* records being written; records handed to Python by sq_drain */
    size_t length, capacity, handed_capacity;
    sq_channel **channels; /* by index; NULL when removed */
    size_t channel_capacity;
    uint32_t *backlog; /* indices whose metadata is still to be asked for (a ring) */
    size_t backlog_head, backlog_length, backlog_capacity;
    int failed; /* out of memory in a callback: records were lost */
};

static int reserve(char **buffer, size_t *capacity, size_t need) {
    if (need <= *capacity) return 0;
    size_t capacity_ = *capacity ? *capacity : (size_t)1 << 20;
    while (capacity_ < need) capacity_ *= 2;
    char *grown = realloc(*buffer, capacity_);
    if (!grown) return -1;
    *buffer = grown;
    *capacity = capacity_;
    return 0;
}

/* Append one record; the caller holds the lock. */
static void append(sq_set *set, uint8_t kind, uint32_t index, int32_t type, uint32_t count, const void *data,
                   uint32_t size) {
    if (reserve(&set->buffer, &set->capacity, set->length + sizeof(sq_record) + size)) {
        set->failed = 1;
        return;
    }
    sq_record record = {kind, index, type, count, size};
    memcpy(set->buffer + set->length, &record, sizeof record);
    if (size) memcpy(set->buffer + set->length + sizeof record, data, size);
    set->length += sizeof record + size;
}

static void push_backlog(sq_set *set, uint32_t index) {
    if (set->backlog_length == set->backlog_capacity) {
        size_t capacity = set->backlog_capacity ? set->backlog_capacity * 2 : 4096;
        uint32_t *grown = malloc(capacity * sizeof *grown);
        if (!grown) {
            set->failed = 1;
            return;
        }
        for (size_t i = 0; i < set->backlog_length; i++)
            grown[i] = set->backlog[(set->backlog_head + i) % set->backlog_capacity];
        free(set->backlog);
        set->backlog = grown;
        set->backlog_capacity = capacity;
        set->backlog_head = 0;
    }
    set->backlog[(set->backlog_head + set->backlog_length) % set->backlog_capacity] = index;
    set->backlog_length++;
}

static uint32_t dbr_size_n(const sq_set *set, long type, long count) {
    unsigned base = set->ca.dbr_size[type];
    return count <= 0 ? base : base + (uint32_t)(count - 1) * set->ca.dbr_value_size[type];
}

static void on_value(struct sq_event_args args) {
    sq_channel *channel = args.usr;
    if (args.status != ECA_NORMAL || !args.dbr || !channel) return;
    sq_set *set = channel->set;
    pthread_mutex_lock(&set->lock);
    append(set, REC_VALUE, channel->index, (int32_t)args.type, (uint32_t)args.count, args.dbr,
           dbr_size_n(set, args.type, args.count));
    pthread_mutex_unlock(&set->lock);
}

static void on_metadata(struct sq_event_args args) {
    sq_channel *channel = args.usr;
    if (args.status != ECA_NORMAL || !args.dbr || !channel) return;
    sq_set *set = channel->set;
    pthread_mutex_lock(&set->lock);
    append(set, REC_METADATA, channel->index, (int32_t)args.type, 1, args.dbr, dbr_size_n(set, args.type, 1));
    pthread_mutex_unlock(&set->lock);
}

/* libca's ca_puser, the same for every set (one libca per process): a connection callback gets
 * only the chid, and finds its sq_channel (and so its set) through it. */
static void *(*puser_of)(sq_chid);

/* A channel connected: subscribe it (again if its type changed while its IOC was away; libca
 * keeps a subscription across reconnects), queue its metadata request and tell Python. */
static void on_connection(struct sq_connection_args args) {
    sq_channel *channel = puser_of(args.chid);
    if (!channel) return;
    sq_set *set = channel->set;
    if (args.op != CA_OP_CONN_UP) {
        pthread_mutex_lock(&set->lock);
        channel->connected = 0;
        append(set, REC_DISCONNECTED, channel->index, 0, 0, NULL, 0);
        pthread_mutex_unlock(&set->lock);
        return;
    }
    short native = set->ca.field_type(args.chid);
    unsigned long count = set->ca.element_count(args.chid);
    if (set->subscribe && native >= 0 && native <= LAST_NATIVE && !(channel->evid && native == channel->native)) {
        if (channel->evid) {
            set->ca.clear_subscription(channel->evid);
            channel->evid = NULL;
        }
        /* count 0: the IOC sends the current length of variable-length arrays. */
        if (set->ca.create_subscription(native + DBR_TIME_OFFSET, 0, args.chid, set->mask, on_value, channel,
                                        &channel->evid) != ECA_NORMAL)
            channel->evid = NULL;
    }
    pthread_mutex_lock(&set->lock);
    channel->native = native;
    channel->connected = 1;
    push_backlog(set, channel->index);
    append(set, REC_CONNECTED, channel->index, native, (uint32_t)count, NULL, 0);
    pthread_mutex_unlock(&set->lock);
}

/* A set for one polling thread. `mask`: the DBE_* events to subscribe to; subscribe 0: none. */
sq_set *sq_open(const sq_ca_api *api, int subscribe, long mask) {
    sq_set *set = calloc(1, sizeof *set);
    if (!set) return NULL;
    set->ca = *api;
    set->subscribe = subscribe;
    set->mask = mask;
    pthread_mutex_init(&set->lock, NULL);
    puser_of = api->puser;
    return set;
}

/* Create channels for `n` NUL-separated names with indices first .. first+n-1, writing their
 * chids to `chids`. Returns how many were created; if fewer than `n`, `status` holds libca's
 * status for the next one. Flushes once at the end. */
long sq_add(sq_set *set, const char *names, long n, uint32_t first, sq_chid *chids, int *status) {
    size_t need = (size_t)first + (size_t)n;
    if (need > set->channel_capacity) {
        size_t capacity = set->channel_capacity ? set->channel_capacity : 1024;
        while (capacity < need) capacity *= 2;
        sq_channel **grown = realloc(set->channels, capacity * sizeof *grown);
        if (!grown) {
            *status = 0;
            return 0;
        }
        memset(grown + set->channel_capacity, 0, (capacity - set->channel_capacity) * sizeof *grown);
        set->channels = grown;
        set->channel_capacity = capacity;
    }
    const char *name = names;
    long created = 0;
    *status = ECA_NORMAL;
    for (; created < n; created++) {
        sq_channel *channel = calloc(1, sizeof *channel);
        if (!channel) {
            *status = 0;
            break;
        }
        channel->set = set;
        channel->index = first + (uint32_t)created;
        channel->native = -1;
        /* Known to the table before libca can call back with it. */
        set->channels[channel->index] = channel;
        *status = set->ca.create_channel(name, on_connection, channel, 0, &channel->chid);
        if (*status != ECA_NORMAL) {
            set->channels[channel->index] = NULL;
            free(channel);
            break;
        }
        chids[created] = channel->chid;
        name += strlen(name) + 1;
    }
    set->ca.flush_io();
    return created;
}

/* Clear channels (libca clears their subscriptions; no callback follows). */
void sq_remove(sq_set *set, const uint32_t *indices, long n) {
    for (long i = 0; i < n; i++) {
        uint32_t index = indices[i];
        if (index >= set->channel_capacity || !set->channels[index]) continue;
        sq_channel *channel = set->channels[index];
        set->ca.clear_channel(channel->chid);
        pthread_mutex_lock(&set->lock);
        set->channels[index] = NULL;
        pthread_mutex_unlock(&set->lock);
        free(channel);
    }
    set->ca.flush_io();
}

/* Ask for the DBR_CTRL metadata of up to `limit` connected channels from the backlog, oldest
 * first; strings, which have no DBR_CTRL form, get an empty metadata record at once. */
long sq_request_metadata(sq_set *set, long limit) {
    long asked = 0;
    pthread_mutex_lock(&set->lock);
    while (set->backlog_length && asked < limit) {
        uint32_t index = set->backlog[set->backlog_head];
        set->backlog_head = (set->backlog_head + 1) % set->backlog_capacity;
        set->backlog_length--;
        sq_channel *channel = index < set->channel_capacity ? set->channels[index] : NULL;
        if (!channel || !channel->connected || channel->native < 0 || channel->native > LAST_NATIVE) continue;
        short native = channel->native;
        sq_chid chid = channel->chid;
        if (native == 0) {
            append(set, REC_METADATA, index, -1, 0, NULL, 0);
        } else {
            /* Not under the lock: a preemptive context may call back before this returns. The
             * reply carries its DBR type, which Python decodes by (the channel's type may change). */
            pthread_mutex_unlock(&set->lock);
            int status = set->ca.array_get_callback(native + DBR_CTRL_OFFSET, 1, chid, on_metadata, channel);
            pthread_mutex_lock(&set->lock);
            /* Refused while connected (out of memory): ask again at a later poll. A disconnected
             * channel is queued again when it reconnects. */
            if (status != ECA_NORMAL && channel->connected) push_backlog(set, index);
        }
        asked++;
    }
    pthread_mutex_unlock(&set->lock);
    if (asked) set->ca.flush_io();
    return asked;
}

/* Hand over the records written since the last call: a pointer valid until the next call, and
 * the number of bytes. Returns (size_t)-1 once if a callback ran out of memory. */
size_t sq_drain(sq_set *set, char **records) {
    pthread_mutex_lock(&set->lock);
    char *full = set->buffer;
    size_t length = set->length, capacity = set->capacity;
    int failed = set->failed;
    set->buffer = set->handed;
    set->capacity = set->handed_capacity;
    set->length = 0;
    set->failed = 0;
    set->handed = full;
    set->handed_capacity = capacity;
    pthread_mutex_unlock(&set->lock);
    *records = full;
    return failed ? (size_t)-1 : length;
}

/* Free a set whose channels were all removed. */
void sq_close(sq_set *set) {
    for (size_t i = 0; i < set->channel_capacity; i++) free(set->channels[i]);
    free(set->channels);
    free(set->buffer);
    free(set->handed);
    free(set->backlog);
    pthread_mutex_destroy(&set->lock);
    free(set);
}
