package tracker

import (
	"regexp"

	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/store"
)

// replPolicy matches the replication policies mogway implements: MultipleHosts() or
// MultipleHosts(N).
var replPolicy = regexp.MustCompile(`^(MultipleHosts)\((\d*)\)$`)

// defaultReplPolicy is how an empty replpolicy reads back.
const defaultReplPolicy = "MultipleHosts()"

// adminDomain looks a domain up for the namespace commands, which answer domain_not_found rather
// than unreg_domain. It reads the store, not the cache, as the Perl tracker does.
func (q *query) adminDomain(name string) (store.Domain, error) {
	doms, err := q.s.namespace.Domains(q.ctx)
	if err != nil {
		return store.Domain{}, q.dbErr("domains", err)
	}
	for _, d := range doms {
		if d.Name == name {
			return d, nil
		}
	}
	return store.Domain{}, perr(mogproto.ErrDomainNotFound)
}

// storedClass returns the stored class row of a domain by name (the implicit default has none).
func (q *query) storedClass(domainID int, name string) (store.Class, bool, error) {
	cs, err := q.s.namespace.Classes(q.ctx)
	if err != nil {
		return store.Class{}, false, q.dbErr("classes", err)
	}
	for _, c := range cs {
		if c.DomainID == domainID && (c.Name == name || (c.ID == 0 && name == "default")) {
			return c, true, nil
		}
	}
	return store.Class{}, false, nil
}

// classArgs returns the domain and class arguments of a class command, or no_domain or no_class
// when one is missing.
func (q *query) classArgs() (domain, class string, err error) {
	domain = q.args.Get("domain")
	if domain == "" {
		return "", "", perr(mogproto.ErrNoDomain)
	}
	class = q.args.Get("class")
	if class == "" {
		return "", "", perr(mogproto.ErrNoClass)
	}
	return domain, class, nil
}

// domainClass returns the domain named domain (domain_not_found when there is none) and its stored
// class row named name, if any.
func (q *query) domainClass(domain, name string) (d store.Domain, c store.Class, exists bool, err error) {
	if d, err = q.adminDomain(domain); err != nil {
		return d, c, false, err
	}
	c, exists, err = q.storedClass(d.ID, name)
	return d, c, exists, err
}

func (q *query) createDomain() (mogproto.Args, error) {
	name := q.args.Get("domain")
	if !truthy(name) {
		return nil, perr(mogproto.ErrNoDomain)
	}
	if _, err := q.s.namespace.CreateDomain(q.ctx, name); err != nil {
		if isExists(err) {
			return nil, perr(mogproto.ErrDomainExists)
		}
		return nil, q.dbErr("create_domain", err)
	}
	if err := q.refresh(); err != nil {
		return nil, err
	}
	return mogproto.Args{{Name: "domain", Value: name}}, nil
}

func (q *query) deleteDomain() (mogproto.Args, error) {
	name := q.args.Get("domain")
	if !truthy(name) {
		return nil, perr(mogproto.ErrNoDomain)
	}
	d, err := q.adminDomain(name)
	if err != nil {
		return nil, err
	}
	n, err := q.s.namespace.CountFiles(q.ctx, d.ID, -1)
	if err != nil {
		return nil, q.dbErr("delete_domain", err)
	}
	if n > 0 {
		return nil, perr(mogproto.ErrDomainHasFiles)
	}
	cs, err := q.s.namespace.Classes(q.ctx)
	if err != nil {
		return nil, q.dbErr("delete_domain", err)
	}
	for _, c := range cs {
		if c.DomainID == d.ID && c.ID != 0 {
			return nil, perr(mogproto.ErrDomainHasClasses)
		}
	}
	// DeleteDomain also removes a stored default-class row, in the same transaction.
	if err := q.s.namespace.DeleteDomain(q.ctx, d.ID); err != nil && !isNotFound(err) {
		return nil, q.dbErr("delete_domain", err)
	}
	if err := q.refresh(); err != nil {
		return nil, err
	}
	return mogproto.Args{{Name: "domain", Value: name}}, nil
}

func (q *query) getDomains() (mogproto.Args, error) {
	n := q.s.state.current()
	var res mogproto.Args
	for i, d := range n.domains {
		p := "domain" + itoa(i+1)
		res.Add(p, d.Name)
		cs := n.classes[d.ID]
		for j, c := range cs {
			cp := p + "class" + itoa(j+1)
			res.Add(cp+"name", c.Name)
			res.Add(cp+"mindevcount", itoa(c.MinDevCount))
			rp := c.ReplPolicy
			if rp == "" {
				rp = defaultReplPolicy
			}
			res.Add(cp+"replpolicy", rp)
			res.Add(cp+"hashtype", c.HashType.String())
		}
		res.Add(p+"classes", itoa(len(cs)))
	}
	res.Add("domains", itoa(len(n.domains)))
	return res, nil
}

func (q *query) createClass() (mogproto.Args, error) { return q.createOrUpdateClass(false) }
func (q *query) updateClass() (mogproto.Args, error) { return q.createOrUpdateClass(true) }

// createOrUpdateClass is create_class and update_class (spec 3.2).
func (q *query) createOrUpdateClass(update bool) (mogproto.Args, error) {
	domain, name, err := q.classArgs()
	if err != nil {
		return nil, err
	}
	mindev := perlInt(q.args.Get("mindevcount"))
	if mindev <= 0 {
		return nil, perr(mogproto.ErrInvalidMindevcount)
	}
	if mindev > 255 {
		return nil, perrMsg(mogproto.ErrInvalidMindevcount, "The mindevcount must be at most 255")
	}
	rp := q.args.Get("replpolicy")
	if rp == "0" {
		rp = ""
	}
	if rp != "" && !replPolicy.MatchString(rp) {
		return nil, perrMsg(mogproto.ErrInvalidReplpolicy, "Unsupported replication policy "+rp+"; use MultipleHosts() or MultipleHosts(N)")
	}
	ht, hashGiven := q.args.Lookup("hashtype")
	hashGiven = hashGiven && truthy(ht)
	hashT := store.HashNone
	if hashGiven && ht != "NONE" {
		var ok bool
		if hashT, ok = store.ParseHash(ht); !ok {
			return nil, perr(mogproto.ErrInvalidHashtype)
		}
	}
	d, cur, exists, err := q.domainClass(domain, name)
	if err != nil {
		return nil, err
	}
	if update && !exists && name != "default" {
		return nil, perr(mogproto.ErrClassNotFound)
	}
	if !update && exists {
		return nil, perr(mogproto.ErrClassExists)
	}
	c := cur
	if !exists {
		c = store.Class{DomainID: d.ID, Name: name} // the store gives "default" ID 0
	}
	c.MinDevCount = int(mindev)
	if rp != "" {
		c.ReplPolicy = rp
	}
	if hashGiven {
		c.HashType = hashT
	}
	if exists {
		err = q.s.namespace.UpdateClass(q.ctx, c)
	} else {
		_, err = q.s.namespace.CreateClass(q.ctx, c)
	}
	if err := q.saved("create_class", err, mogproto.ErrClassExists, mogproto.ErrClassNotFound); err != nil {
		return nil, err
	}
	return mogproto.Args{
		{Name: "class", Value: name},
		{Name: "mindevcount", Value: i64toa(mindev)},
		{Name: "domain", Value: domain},
	}, nil
}

func (q *query) deleteClass() (mogproto.Args, error) {
	domain, name, err := q.classArgs()
	if err != nil {
		return nil, err
	}
	if name == "default" {
		return nil, perr(mogproto.ErrNodelDefaultClass)
	}
	d, c, exists, err := q.domainClass(domain, name)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, perr(mogproto.ErrClassNotFound)
	}
	n, err := q.s.namespace.CountFiles(q.ctx, d.ID, c.ID)
	if err != nil {
		return nil, q.dbErr("delete_class", err)
	}
	if n > 0 {
		return nil, perr(mogproto.ErrClassHasFiles)
	}
	if err := q.s.namespace.DeleteClass(q.ctx, d.ID, c.ID); err != nil {
		if isNotFound(err) {
			return nil, perr(mogproto.ErrClassNotFound)
		}
		return nil, q.dbErr("delete_class", err)
	}
	if err := q.refresh(); err != nil {
		return nil, err
	}
	return mogproto.Args{{Name: "domain", Value: domain}, {Name: "class", Value: name}}, nil
}

// saved answers the store's result err of the create or update behind command cmd: the ERR code
// exists for store.ErrExists, missing for store.ErrNotFound, ERR db for any other error, and on
// success a refresh of the cached tables so that this tracker answers with the change at once.
func (q *query) saved(cmd string, err error, exists, missing string) error {
	switch {
	case isExists(err):
		return perr(exists)
	case isNotFound(err):
		return perr(missing)
	case err != nil:
		return q.dbErr(cmd, err)
	}
	return q.refresh()
}
