-- A generated catalogue for the marketplace benchmarks (bench/search.sh, bench/pages.sh):
-- :npkg packages (Providers, Configurations, Functions of ten families), one tagged version
-- each, and :per API types per version over 20 groups and 200 kinds, each with a stub CRD
-- object. Run with `psql -v npkg=500 -v per=200 -f bench/catalogue.sql`; packages already in the
-- database (real ones the benchmark indexed) are left as they are.
with fam as (select array['aws','gcp','azure','kubernetes','helm','github','vault','datadog','cloudflare','upjet'] a)
insert into packages (backend, repository, package_type, name, visibility)
select 'primary', 'bench/provider-' || fam.a[1 + i % 10] || '-' || i,
       case i % 10 when 0 then 'Configuration' when 1 then 'Function' else 'Provider' end,
       'provider-' || fam.a[1 + i % 10] || '-' || i, 'public'
from generate_series(1, :npkg) i, fam;
insert into versions (package_id, manifest_digest, kind, package_type, meta)
select id, 'sha256:' || encode(sha256(('m' || id)::text::bytea), 'hex'), 'package', package_type,
       jsonb_build_object('description', 'Crossplane ' || name || ' manages ' ||
         (array['storage','networking','databases','identity','compute','observability'])[1 + id % 6]
         || ' resources', 'maintainer', 'Team ' || (id % 37))
from packages where repository like 'bench/provider-%';
create temporary table generated as
select v.id, v.package_id, row_number() over (order by v.id) - 1 as n
from versions v join packages p on p.id = v.package_id where p.repository like 'bench/provider-%';
insert into tags (package_id, tag, version_id)
select package_id, 'v1.' || (n % 20) || '.0', id from generated;
update packages p set latest_version_id = v.id, latest_tag = 'v1.' || (g.n % 20) || '.0',
       description = v.meta->>'description', maintainer = v.meta->>'maintainer'
from versions v join generated g on g.id = v.id where v.package_id = p.id;
insert into objects (digest, api_version, kind, name, class, body, size_bytes)
select 'sha256:' || encode(sha256(('o' || i)::text::bytea), 'hex'), 'apiextensions.k8s.io/v1',
       'CustomResourceDefinition', 'crd' || i, 'crd', '{}', 2
from generate_series(1, :npkg * :per) i;
with words as (select array['Bucket','Instance','Cluster','Role','Policy','User','Group','Network',
       'Subnet','Route','Table','Queue','Topic','Function','Key','Secret','Certificate','Zone',
       'Record','Volume','Snapshot','Image','Registry','Repository','Gateway','LoadBalancer',
       'Listener','Rule','Alarm','Dashboard','Stream','Pipeline','Job','Schedule','Trigger',
       'Account','Project','Folder','Organization','Member','Binding','Endpoint','Service',
       'Deployment','Domain','Index','Database','Server','Firewall','Address'] w,
     array['','Policy','Attachment','Configuration'] s,
     array['s3','ec2','iam','rds','sqs','sns','kms','route53','lambda','ecr','elb','cloudwatch',
       'kinesis','glue','dynamodb','eks','compute','storage','network','dns'] g,
     array['aws','gcp','azure','kubernetes','helm','github','vault','datadog','cloudflare','upjet'] f)
insert into api_types (version_id, object_digest, definition, api_group, kind, plural,
                       served_versions, storage_version, versions, scope)
select v.id, 'sha256:' || encode(sha256(('o' || (v.n * :per + k + 1))::text::bytea), 'hex'),
       'CustomResourceDefinition',
       g[1 + (k + v.n + 1) % 20] || '.' || f[1 + (v.n + 1) % 10] || '.example.io',
       w[1 + k % 50] || s[1 + (k / 50) % 4], lower(w[1 + k % 50] || s[1 + (k / 50) % 4]) || 's',
       '{v1beta1}', 'v1beta1', '[{"name":"v1beta1","served":true,"storage":true}]', 'Cluster'
from generated v, generate_series(0, :per - 1) k, words;
analyze;
