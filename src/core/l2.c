/* Built-in L2 classifier (minimal): exact (destination MAC, VLAN) match for
 * unicast, broadcast to every member of the frame's VLAN. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "core/internal.h"

struct member {
	vdemux_vm_id vm;
	uint16_t vid;
	uint16_t tagged;
};

struct ucast {
	uint8_t mac[6];
	uint16_t vid;
	vdemux_vm_id vm;
};

struct vdemux_l2 {
	struct vdemux_classifier cls; /* first */
	struct vdemux_alloc_hooks alloc;
	pthread_mutex_t lock;
	uint16_t vlan_proto, native_vlan;
	uint32_t max_entries;
	struct member *mem;
	uint32_t nmem, mem_cap;
	struct ucast *uc;
	uint32_t nuc;
};

static bool is_group(const uint8_t *m)
{
	return m[0] & 1;
}

static bool is_zero(const uint8_t *m)
{
	return !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]);
}

static uint16_t frame_vid(const struct vdemux_l2 *l2, const uint8_t *f, uint32_t len, bool *tagged)
{
	*tagged = false;
	if (len >= 18 && ((f[12] << 8) | f[13]) == l2->vlan_proto) {
		uint16_t vid = ((f[14] << 8) | f[15]) & 0xfff;

		if (vid) {
			*tagged = true;
			return vid;
		}
	}
	return l2->native_vlan;
}

static int l2_classify(struct vdemux_classifier *cls, const uint8_t *f, uint32_t len,
		       struct vdemux_verdict *v)
{
	return vdemux_l2_classify((vdemux_l2 *)cls, f, len, v);
}

static void l2_vm_removed(struct vdemux_classifier *cls, vdemux_vm_id vm)
{
	vdemux_l2_remove_vm((vdemux_l2 *)cls, vm);
}

int vd_l2_create(vdemux_l2 **out, const struct vdemux_l2_opts *uopts,
		 const struct vdemux_alloc_hooks *alloc)
{
	struct vdemux_l2_opts o = {0};
	struct vdemux_l2 *l2;

	if (!out)
		return -EINVAL;
	if (uopts) {
		if (vd_opts_check(uopts, sizeof(o)))
			return -EINVAL;
		vd_opts_copy(&o, uopts, sizeof(o));
	}
	if (alloc && !o.alloc.calloc)
		o.alloc = *alloc;
	if (!vd_hooks_valid(&o.alloc) || (o.vlan_proto && o.vlan_proto != VDEMUX_TPID_8021Q &&
					 o.vlan_proto != VDEMUX_TPID_8021AD) ||
	    o.native_vlan > 4094)
		return -EINVAL;
	l2 = vd_calloc(&o.alloc, 1, sizeof(*l2));
	if (!l2)
		return -ENOMEM;
	l2->alloc = o.alloc;
	l2->cls.version = VDEMUX_CLASSIFIER_VERSION;
	l2->cls.name = "l2";
	l2->cls.classify = l2_classify;
	l2->cls.vm_removed = l2_vm_removed;
	l2->vlan_proto = o.vlan_proto ? o.vlan_proto : VDEMUX_TPID_8021Q;
	l2->native_vlan = o.native_vlan ? o.native_vlan : 1;
	l2->max_entries = o.max_entries ? o.max_entries : 65536;
	pthread_mutex_init(&l2->lock, NULL);
	*out = l2;
	return 0;
}

int vdemux_l2_create(vdemux_l2 **out, const struct vdemux_l2_opts *opts)
{
	return vd_l2_create(out, opts, NULL);
}

void vdemux_l2_destroy(vdemux_l2 *l2)
{
	struct vdemux_alloc_hooks h;

	if (!l2)
		return;
	h = l2->alloc;
	pthread_mutex_destroy(&l2->lock);
	vd_free(&h, l2->mem);
	vd_free(&h, l2->uc);
	vd_free(&h, l2);
}

struct vdemux_classifier *vdemux_l2_classifier(vdemux_l2 *l2)
{
	return l2 ? &l2->cls : NULL;
}

static struct member *find_member(struct vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid)
{
	for (uint32_t i = 0; i < l2->nmem; i++)
		if (l2->mem[i].vm == vm && l2->mem[i].vid == vid)
			return &l2->mem[i];
	return NULL;
}

int vdemux_l2_vlan_join(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid, uint32_t flags)
{
	struct member *m;
	int err = 0;

	if (!l2 || !vm || vid == 0 || vid > 4094 || (flags & ~VDEMUX_L2_TAGGED))
		return -EINVAL;
	pthread_mutex_lock(&l2->lock);
	m = find_member(l2, vm, vid);
	if (!m) {
		if (l2->nmem == l2->mem_cap) {
			uint32_t cap = l2->mem_cap ? l2->mem_cap * 2 : 16;
			struct member *n = vd_calloc(&l2->alloc, cap, sizeof(*n));

			if (!n) {
				err = -ENOMEM;
				goto out;
			}
			if (l2->nmem)
				memcpy(n, l2->mem, l2->nmem * sizeof(*n));
			vd_free(&l2->alloc, l2->mem);
			l2->mem = n;
			l2->mem_cap = cap;
		}
		m = &l2->mem[l2->nmem++];
		m->vm = vm;
		m->vid = vid;
	}
	m->tagged = !!(flags & VDEMUX_L2_TAGGED);
out:
	pthread_mutex_unlock(&l2->lock);
	return err;
}

int vdemux_l2_vlan_leave(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid)
{
	struct member *m;

	if (!l2 || !vm)
		return -EINVAL;
	pthread_mutex_lock(&l2->lock);
	m = find_member(l2, vm, vid);
	if (m)
		*m = l2->mem[--l2->nmem];
	for (uint32_t i = 0; m && i < l2->nuc;)
		if (l2->uc[i].vm == vm && l2->uc[i].vid == vid)
			l2->uc[i] = l2->uc[--l2->nuc];
		else
			i++;
	pthread_mutex_unlock(&l2->lock);
	return m ? 0 : -ENOENT;
}

int vdemux_l2_add_mac(vdemux_l2 *l2, vdemux_vm_id vm, const uint8_t mac[6], uint16_t vid)
{
	int err = 0;

	if (!l2 || !vm || !mac || is_group(mac) || is_zero(mac) || !vid || vid > 4094)
		return -EINVAL;
	pthread_mutex_lock(&l2->lock);
	for (uint32_t i = 0; i < l2->nuc; i++)
		if (!memcmp(l2->uc[i].mac, mac, 6) && l2->uc[i].vid == vid) {
			err = l2->uc[i].vm == vm ? 0 : -EEXIST;
			goto out;
		}
	if (l2->nuc == l2->max_entries) {
		err = -ENOSPC;
		goto out;
	}
	if (!l2->uc) {
		l2->uc = vd_calloc(&l2->alloc, l2->max_entries, sizeof(*l2->uc));
		if (!l2->uc) {
			err = -ENOMEM;
			goto out;
		}
	}
	memcpy(l2->uc[l2->nuc].mac, mac, 6);
	l2->uc[l2->nuc].vid = vid;
	l2->uc[l2->nuc].vm = vm;
	l2->nuc++;
out:
	pthread_mutex_unlock(&l2->lock);
	return err;
}

int vdemux_l2_del_mac(vdemux_l2 *l2, const uint8_t mac[6], uint16_t vid)
{
	int err = -ENOENT;

	if (!l2 || !mac)
		return -EINVAL;
	pthread_mutex_lock(&l2->lock);
	for (uint32_t i = 0; i < l2->nuc; i++)
		if (!memcmp(l2->uc[i].mac, mac, 6) && l2->uc[i].vid == vid) {
			l2->uc[i] = l2->uc[--l2->nuc];
			err = 0;
			break;
		}
	pthread_mutex_unlock(&l2->lock);
	return err;
}

int vdemux_l2_add_mcast(vdemux_l2 *l2, vdemux_vm_id vm, const uint8_t group[6], uint16_t vid)
{
	(void)l2, (void)vm, (void)group, (void)vid;
	return -EOPNOTSUPP;
}

int vdemux_l2_del_mcast(vdemux_l2 *l2, vdemux_vm_id vm, const uint8_t group[6], uint16_t vid)
{
	(void)l2, (void)vm, (void)group, (void)vid;
	return -EOPNOTSUPP;
}

int vdemux_l2_set_allmulti(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid, int on)
{
	(void)l2, (void)vm, (void)vid, (void)on;
	return -EOPNOTSUPP;
}

int vdemux_l2_set_default(vdemux_l2 *l2, uint16_t vid, vdemux_vm_id vm)
{
	(void)l2, (void)vm, (void)vid;
	return -EOPNOTSUPP;
}

void vdemux_l2_remove_vm(vdemux_l2 *l2, vdemux_vm_id vm)
{
	if (!l2)
		return;
	pthread_mutex_lock(&l2->lock);
	for (uint32_t i = 0; i < l2->nmem;)
		if (l2->mem[i].vm == vm)
			l2->mem[i] = l2->mem[--l2->nmem];
		else
			i++;
	for (uint32_t i = 0; i < l2->nuc;)
		if (l2->uc[i].vm == vm)
			l2->uc[i] = l2->uc[--l2->nuc];
		else
			i++;
	pthread_mutex_unlock(&l2->lock);
}

static vdemux_vm_id lookup_locked(struct vdemux_l2 *l2, const uint8_t *mac, uint16_t vid)
{
	for (uint32_t i = 0; i < l2->nuc; i++)
		if (l2->uc[i].vid == vid && !memcmp(l2->uc[i].mac, mac, 6))
			return l2->uc[i].vm;
	return 0;
}

vdemux_vm_id vdemux_l2_lookup(vdemux_l2 *l2, const uint8_t mac[6], uint16_t vid)
{
	vdemux_vm_id vm;

	if (!l2 || !mac)
		return 0;
	pthread_mutex_lock(&l2->lock);
	vm = lookup_locked(l2, mac, vid);
	pthread_mutex_unlock(&l2->lock);
	return vm;
}

static void add_dest(struct vdemux_verdict *v, const struct vdemux_l2 *l2, const struct member *m,
		     bool tagged_in, const uint8_t *f)
{
	struct vdemux_dest *d;

	if (v->n == v->cap)
		return;
	d = &v->dests[v->n++];
	memset(d, 0, sizeof(*d));
	d->vm = m->vm;
	if (m->tagged && !tagged_in) {
		d->action = VDEMUX_VLAN_PUSH;
		d->tpid = l2->vlan_proto;
		d->tci = m->vid;
	} else if (!m->tagged && tagged_in) {
		d->action = VDEMUX_VLAN_STRIP;
	} else {
		(void)f;
		d->action = VDEMUX_VLAN_KEEP;
	}
}

int vdemux_l2_classify(vdemux_l2 *l2, const uint8_t *f, uint32_t len, struct vdemux_verdict *v)
{
	bool tagged;
	uint16_t vid;

	if (!l2 || !f || !v)
		return -EINVAL;
	v->n = 0;
	v->drop_reason = 0;
	if (len < ETH_HLEN) {
		v->drop_reason = VDEMUX_DROP_MALFORMED;
		return 0;
	}
	if (is_group(f + 6) || is_zero(f + 6)) {
		v->drop_reason = VDEMUX_DROP_INVALID_SRC;
		return 0;
	}
	vid = frame_vid(l2, f, len, &tagged);
	pthread_mutex_lock(&l2->lock);
	if (is_group(f)) {
		static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

		if (!memcmp(f, bcast, 6)) {
			for (uint32_t i = 0; i < l2->nmem; i++)
				if (l2->mem[i].vid == vid)
					add_dest(v, l2, &l2->mem[i], tagged, f);
			if (!v->n)
				v->drop_reason = VDEMUX_DROP_NO_VLAN_MEMBER;
		} else {
			v->drop_reason = VDEMUX_DROP_NO_SUBSCRIBER;
		}
	} else {
		vdemux_vm_id vm = lookup_locked(l2, f, vid);
		struct member *m = vm ? find_member(l2, vm, vid) : NULL;

		if (m)
			add_dest(v, l2, m, tagged, f);
		else
			v->drop_reason = VDEMUX_DROP_UNKNOWN_UNICAST;
	}
	pthread_mutex_unlock(&l2->lock);
	return 0;
}
