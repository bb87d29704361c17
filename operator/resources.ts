// REST paths of the kinds the operator touches: the built-in ones and its two CRDs.
import { BUILT_IN_RESOURCES, resource } from '../kube/resources.ts';
import { CLUSTER_KIND, CLUSTER_PLURAL, GROUP, POOL_KIND, POOL_PLURAL, VERSION } from './api/v1alpha1.ts';

export const RESOURCES = {
  ...BUILT_IN_RESOURCES,
  cluster: resource(`${GROUP}/${VERSION}`, CLUSTER_KIND, CLUSTER_PLURAL),
  pool: resource(`${GROUP}/${VERSION}`, POOL_KIND, POOL_PLURAL),
} as const;
